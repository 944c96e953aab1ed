use super::*;
use crate::cores::{Contention, Scaling};
use crate::django::DjangoRow;
use crate::fleet::{FleetConfig, Publication};
use crate::frameworks::CaseRow;
use crate::measure::Timing;
use crate::native::ByKeys;

fn t(ns: f64) -> Timing {
    Timing { median: ns, min: ns }
}

fn p(ns: u64) -> Percentiles {
    let d = Duration::from_nanos(ns);
    Percentiles {
        p50: d,
        p99: d,
        p999: d,
        samples: 1,
    }
}

fn django_row(keys: usize, token: &str, keyroll_ns: f64, django_ns: f64) -> DjangoRow {
    DjangoRow {
        keys,
        token: token.into(),
        keyroll_ns,
        django_ns,
        itsdangerous_ns: Some(django_ns),
    }
}

/// Results that meet every target exactly at its bound.
fn case_row(framework: &str, case: &str, keyroll_ns: f64, static_ns: f64, target: Option<f64>) -> CaseRow {
    CaseRow {
        framework: framework.into(),
        case: case.into(),
        keyroll_ns,
        static_ns,
        target,
    }
}

fn node_row(case: &str, keyroll_ns: f64, node_ns: f64) -> crate::node::VerifyRow {
    crate::node::VerifyRow {
        case: case.into(),
        keyroll_ns,
        node_ns,
    }
}

fn python_row(token: &str, keyroll_ns: f64, django_ns: f64) -> crate::python::PythonRow {
    crate::python::PythonRow {
        token: token.into(),
        keyroll_ns,
        django_ns,
    }
}

fn at_the_bounds() -> Results {
    let interval = Duration::from_secs(5);
    let config = FleetConfig {
        replicas: 10,
        interval,
        jitter: interval / 10,
        metadata_every: 10,
        publications: 1,
    };
    Results {
        machine: Machine::default(),
        effort: Effort::QUICK,
        native: NativeResults {
            raw_verify: t(100.0),
            raw_sign: t(100.0),
            sign_one: t(130.0),
            sign_sixteen: t(130.0),
            verify_decoded: t(160.0),
            with_deadline: t(124.0),
            by_keys: [1, 4, 16, 64]
                .map(|keys| ByKeys {
                    keys,
                    newest: t(120.0),
                    oldest: t(if keys == 64 { 132.0 } else { 120.0 }),
                })
                .to_vec(),
        },
        overheads: Overheads {
            roles: t(5.0),
            clock: t(20.0),
            mac_decoding: t(10.0),
            derived_load: t(2.0),
            counter: t(1.0),
        },
        fernet: FernetResults {
            raw: t(100.0),
            keyroll: t(120.0),
            token_len: 120,
        },
        cores: CoreResults {
            scaling: vec![
                Scaling {
                    threads: 1,
                    raw: 100.0,
                    native: 80.0,
                    shared_write: 78.0,
                },
                Scaling {
                    threads: 2,
                    raw: 200.0,
                    native: 160.0,
                    shared_write: 100.0,
                },
            ],
            trials: 3,
            trial: Duration::from_millis(5),
            contention: Contention {
                threads: 2,
                shared_alone: 5.0,
                shared: 50.0,
                sharded: 1.0,
                sharded_alone: 1.0,
            },
        },
        allocs: vec![AllocRow {
            what: "verify_encoded".into(),
            allocations: 0.0,
            bytes: 0.0,
        }],
        django: Some(DjangoResults {
            django: "5.2".into(),
            itsdangerous: "2.2".into(),
            python: "3.11".into(),
            unsign: [1, 4, 16, 17, 64]
                .into_iter()
                .flat_map(|k| {
                    [
                        django_row(k, "newest", if k == 1 { 130.0 } else { 100.0 }, 4_000.0),
                        django_row(k, "oldest", 100.0 * k as f64, 4_000.0 * k as f64),
                    ]
                })
                .collect(),
            loads: vec![django_row(17, "newest", 500.0, 10_000.0)],
            raw_ns: 100.0,
        }),
        python: Some(PythonResults {
            python: "3.11".into(),
            django: "5.2".into(),
            keys: 17,
            rows: vec![
                python_row("current", 800.0, 4_000.0),
                python_row("fallback 16", 4_000.0, 20_000.0),
            ],
        }),
        frameworks: Some(FrameworkResults {
            versions: "Python 3.11, Django 5.2, Flask 3.1".into(),
            processes: 6,
            rows: vec![
                case_row("django", "request", 103_000.0, 100_000.0, None),
                case_row(
                    "django",
                    "request, in one process",
                    103_000.0,
                    100_000.0,
                    Some(1.03),
                ),
                case_row("django", "signing.loads", 20_000.0, 18_000.0, None),
                case_row(
                    "django",
                    "SECRET_KEY read, in one process",
                    300.0,
                    250.0,
                    Some(1.2),
                ),
                case_row("flask", "request", 102_000.0, 100_000.0, None),
                case_row(
                    "flask",
                    "request, in one process",
                    100_500.0,
                    100_000.0,
                    Some(1.02),
                ),
            ],
            gunicorn: (4, 8, 1_000.0, 1_020.0),
        }),
        node: Some(NodeResults {
            node: "v20".into(),
            peers: "Express 5".into(),
            verify: vec![
                node_row("Django-format verify", 1_500.0, 1_000.0),
                node_row("native verify", 3_000.0, 2_000.0),
            ],
            keyroll_rps: 1_000.0,
            static_rps: 1_030.0,
            ratio: 1.03,
            rounds: 8,
            seconds_per_round: 3.0,
        }),
        cookies: CookieResults {
            cookie_one: t(300.0),
            cookie_sixteen_oldest: t(5_000.0),
            axum_one: t(350.0),
            axum_sixteen_oldest: t(360.0),
            native_one: t(130.0),
            native_sixteen_oldest: t(140.0),
        },
        swaps: SwapResults {
            idle: p(300),
            swapping: p(600),
            achieved_rate: 1_000.0,
            timer_overhead: Duration::from_nanos(20),
        },
        file: FileResults {
            rotations: 200,
            latency: Percentiles {
                p99: Duration::from_millis(100),
                ..p(20_000_000)
            },
            max: Duration::from_millis(100),
        },
        fleet: Some(FleetResults {
            config,
            startup: Duration::from_secs(1),
            steady_per_second: 2.0,
            steady_per_replica_interval: 1.0,
            steady_per_poll: 1.0,
            publications: vec![Publication {
                held: p(3_000_000_000),
                all: interval + interval / 10,
                metadata_reads: 10,
                data_reads: 0,
                window: interval,
                polls: 10,
            }],
        }),
    }
}

#[test]
fn every_target_is_met_exactly_at_its_bound() {
    let targets = targets(&at_the_bounds());
    assert_eq!(targets.len(), 17);
    for target in &targets {
        assert_eq!(target.met, Some(true), "{}: {}", target.goal, target.measured);
    }
    let md = markdown(&at_the_bounds());
    assert!(!md.contains("What limits each missed target"));
    assert!(
        md.contains("Quick smoke run"),
        "a quick run says its figures are noise"
    );
}

#[test]
fn the_texts_name_this_runs_replicas_cores_rate_and_metadata_interval() {
    let mut r = at_the_bounds();
    r.machine.cores = 3;
    r.swaps.achieved_rate = 777.0;
    let fleet = r.fleet.as_mut().unwrap();
    fleet.config.replicas = 42;
    fleet.config.metadata_every = 7;
    let limits: String = targets(&r).iter().map(|t| t.limit.clone()).collect();
    for said in [
        "777 swaps/s",
        "one of the 3 cores",
        "42 replicas",
        "Every 7th poll",
        "1 in 7 replicas",
    ] {
        assert!(limits.contains(said), "{said}: {limits}");
    }
    assert!(markdown(&r).contains("every 7th poll"));
}

#[test]
fn a_target_past_its_bound_is_missed_and_its_limit_explained() {
    let mut r = at_the_bounds();
    r.native.by_keys[0].newest = t(131.0);
    r.django.as_mut().unwrap().unsign[6] = django_row(17, "newest", 100.0, 3_999.0);
    r.swaps.swapping = p(601);
    r.file.latency.p99 = Duration::from_millis(101);
    let fleet = r.fleet.as_mut().unwrap();
    fleet.publications[0].data_reads = 10;
    r.python.as_mut().unwrap().rows[1] = python_row("fallback 16", 4_000.0, 19_999.0);
    r.frameworks.as_mut().unwrap().rows[1].keyroll_ns = 103_001.0;
    let node = r.node.as_mut().unwrap();
    node.verify[1].keyroll_ns = 3_001.0;
    node.ratio = 1.031;
    let missed: Vec<String> = targets(&r)
        .into_iter()
        .filter(|t| t.met == Some(false))
        .map(|t| t.goal)
        .collect();
    assert_eq!(missed.len(), 9, "{missed:?}");
    assert!(
        missed
            .iter()
            .any(|g| g.starts_with("npm package: Django-format and native verify"))
    );
    assert!(
        missed
            .iter()
            .any(|g| g.starts_with("Express request with ring.secrets"))
    );
    assert!(missed.iter().any(|g| g.starts_with("Python package")));
    assert!(
        missed
            .iter()
            .any(|g| g.starts_with("Django request, in one process with keyroll <= 1.03x"))
    );
    assert!(missed.iter().any(|g| g.starts_with("native verify <=")));
    assert!(missed.iter().any(|g| g.starts_with("Django format")));
    assert!(missed.iter().any(|g| g.starts_with("verify p99.9")));
    assert!(missed.iter().any(|g| g.starts_with("file change")));
    assert!(missed.iter().any(|g| g.starts_with("<= 1 store request")));
    let md = markdown(&r);
    assert!(md.contains("What limits each missed target"));
    assert!(
        md.contains("Mostly the cost of SHA-256"),
        "the Django limit is explained"
    );
    assert!(
        md.contains("needs a second request, for the new key"),
        "the fleet limit is explained"
    );
}

#[test]
fn sections_that_could_not_run_say_so_instead_of_passing() {
    let mut r = at_the_bounds();
    r.django = None;
    r.fleet = None;
    r.python = None;
    r.frameworks = None;
    r.node = None;
    let targets = targets(&r);
    let unmeasured = targets.iter().filter(|t| t.met.is_none()).count();
    assert_eq!(
        unmeasured, 8,
        "two Django targets, two fleet targets, the Python package, the request cost, the npm package's two"
    );
    assert!(markdown(&r).contains("Not measured: OpenBao is not installed"));
}
