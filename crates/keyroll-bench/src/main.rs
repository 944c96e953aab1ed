//! `keyroll-bench`: the whole performance comparison of keyroll in one run,
//! written to `docs/BENCHMARKS.md` with SVG plots under `docs/img/`.
//!
//! Run it through `scripts/bench` (release build). Sections, in order: native
//! format against the raw HMAC limit, where its time goes, allocations per
//! call (before any other thread exists, since the allocation counter is
//! process-wide), Django format against Django and itsdangerous, signed
//! cookies against cookie-rs, latency under key swaps, file propagation, and
//! a fleet of replicas polling one OpenBao.

mod alloc;
mod cookies;
mod cores;
mod django;
mod fernet;
mod file;
mod fleet;
mod formats;
mod frameworks;
mod measure;
mod native;
mod node;
mod plot;
mod python;
mod report;
mod swaps;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use clap::Parser;
use plotters::style::RGBColor;

use crate::measure::Effort;
use crate::plot::Series;
use crate::report::{Machine, Results};

/// Runs every benchmark and writes the report.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// A smoke run: few iterations, a small fleet; the figures are noise.
    #[arg(long)]
    quick: bool,
    /// Where to write the Markdown report.
    #[arg(long, default_value = "docs/BENCHMARKS.md")]
    out: PathBuf,
    /// Where to write the SVG plots.
    #[arg(long, default_value = "docs/img")]
    img_dir: PathBuf,
    /// Replicas in the fleet (default 1,000; 20 with --quick).
    #[arg(long)]
    replicas: Option<usize>,
    /// Poll interval of each fleet replica, in milliseconds.
    #[arg(long, default_value_t = 5_000)]
    fleet_interval_ms: u64,
    /// Only the single-thread micro-benchmarks against their raw limits
    /// (native, Django format, Fernet), full effort, printed as ratios; writes
    /// nothing. For measuring a change quickly.
    #[arg(long)]
    micro: bool,
    /// Only the multi-core section (throughput at every thread count, native
    /// against raw, and the contention test), printed; writes nothing.
    #[arg(long, conflicts_with = "micro")]
    cores: bool,
    /// Only what keyroll costs a Django or Flask request against a static
    /// key (request, `signing.loads`, key reads; gunicorn requests per
    /// second), printed with the targets; writes nothing. With `--quick`,
    /// under a minute.
    #[arg(long, conflicts_with_all = ["micro", "cores"])]
    frameworks: bool,
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn command_output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|e| format!("({program} failed: {e})"))
}

/// The CPUs this process may use.
fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn machine() -> Machine {
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split_once(':'))
                .map(|(_, m)| m.trim())
        })
        .unwrap_or("unknown")
        .to_owned();
    let busy = command_output("ps", &["-eo", "pcpu,comm", "--sort=-pcpu"]);
    Machine {
        cpu,
        cores: cpus(),
        load_start: read("/proc/loadavg").trim().to_owned(),
        load_end: String::new(),
        busy: busy.lines().take(8).collect::<Vec<_>>().join("\n"),
        rustc: command_output("rustc", &["--version"]),
        date: command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
    }
}

fn plots(results: &Results, dir: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir)?;
    let mut series = vec![Series {
        name: "keyroll native".into(),
        color: RGBColor(0x1f, 0x77, 0xb4),
        points: results
            .native
            .by_keys
            .iter()
            .map(|b| (b.keys as f64, b.oldest.median))
            .collect(),
    }];
    if let Some(d) = &results.django {
        let counts = native::KEY_COUNTS;
        let rows = || counts.iter().map(|&k| d.unsign_row(k, "oldest"));
        series.push(Series {
            name: "keyroll Django format".into(),
            color: RGBColor(0x2c, 0xa0, 0x2c),
            points: rows().map(|r| (r.keys as f64, r.keyroll_ns)).collect(),
        });
        series.push(Series {
            name: "Django Signer.unsign".into(),
            color: RGBColor(0xd6, 0x27, 0x28),
            points: rows().map(|r| (r.keys as f64, r.django_ns)).collect(),
        });
        series.push(Series {
            name: "itsdangerous Signer.unsign".into(),
            color: RGBColor(0xff, 0x7f, 0x0e),
            points: rows()
                .filter_map(|r| r.itsdangerous_ns.map(|v| (r.keys as f64, v)))
                .collect(),
        });
    }
    plot::verify_vs_keys(&dir.join("verify-vs-keys.svg"), &series)?;
    let p = |x: &measure::Percentiles| [x.p50, x.p99, x.p999].map(|d| d.as_nanos() as f64);
    plot::swap_percentiles(
        &dir.join("swap-latency.svg"),
        results.swaps.achieved_rate,
        p(&results.swaps.idle),
        p(&results.swaps.swapping),
    )?;
    Ok(())
}

/// `--micro`: native, Django-format and Fernet verify against their raw
/// limits, each in its own interleaved run, printed as ratios.
fn micro(effort: Effort) {
    let ratio = |a: &measure::Timing, b: &measure::Timing| a.median / b.median;
    let native = native::run(effort);
    let one = native.with(1);
    println!(
        "native verify_encoded, 1 key: {:.0} ns / raw {:.0} ns = {:.2}x (min rounds {:.2}x)",
        one.newest.median,
        native.raw_verify.median,
        ratio(&one.newest, &native.raw_verify),
        one.newest.min / native.raw_verify.min
    );
    println!(
        "native verify_encoded, fallback window closing ahead: {:.0} ns / raw = {:.2}x",
        native.with_deadline.median,
        ratio(&native.with_deadline, &native.raw_verify)
    );
    let worst = native
        .by_keys
        .iter()
        .map(|b| b.oldest.median / one.newest.median)
        .fold(0.0, f64::max);
    println!("native verify, oldest of up to 64 keys / 1 key: worst {worst:.2}x");
    println!(
        "native sign, 1 key: {:.0} ns / raw {:.0} ns = {:.2}x",
        native.sign_one.median,
        native.raw_sign.median,
        ratio(&native.sign_one, &native.raw_sign)
    );
    let o = native::overheads(effort);
    println!(
        "parts: roles {:.1} ns, clock {:.1} ns, MAC decode {:.1} ns, derived {:.1} ns, counter {:.1} ns",
        o.roles.median, o.clock.median, o.mac_decoding.median, o.derived_load.median, o.counter.median
    );
    let (raw, keyroll) = django::micro(effort);
    println!(
        "Django-format verify, 1 key: {:.0} ns / raw {:.0} ns = {:.2}x (min rounds {:.2}x)",
        keyroll.median,
        raw.median,
        ratio(&keyroll, &raw),
        keyroll.min / raw.min
    );
    let f = fernet::run(effort);
    println!(
        "Fernet decrypt: {:.0} ns / raw {:.0} ns = {:.2}x (min rounds {:.2}x)",
        f.keyroll.median,
        f.raw.median,
        ratio(&f.keyroll, &f.raw),
        f.keyroll.min / f.raw.min
    );
    let t = formats::micro(effort);
    println!(
        "JWT verify, 1 key: {:.0} ns; a fallback's token, 2 keys: {:.0} ns",
        t.jwt_current.median, t.jwt_fallback.median
    );
    println!(
        "Flask load, 1 key: {:.0} ns; a fallback's cookie, 2 keys: {:.0} ns",
        t.flask_current.median, t.flask_fallback.median
    );
}

/// `--cores`: the multi-core section alone, printed.
fn cores_only(effort: Effort, cores: usize) {
    let c = cores::run(effort, cores);
    print!("{}", report::scaling_table(&c));
    let x = c.contention;
    println!(
        "contention, {} threads: one AtomicU64 {:.1} ns ({:.1} alone), per-thread slots {:.1} ns ({:.1} alone)",
        x.threads, x.shared, x.shared_alone, x.sharded, x.sharded_alone
    );
}

fn main() {
    let args = Args::parse();
    let effort = if args.quick { Effort::QUICK } else { Effort::FULL };
    if args.micro {
        micro(effort);
        return;
    }
    if args.cores {
        cores_only(effort, cpus());
        return;
    }
    if args.frameworks {
        if let Some(f) = frameworks::run(args.quick) {
            frameworks::print(&f);
        }
        return;
    }
    let mut machine = machine();
    eprintln!(
        "keyroll-bench: {} run on {} ({} cores), load {}",
        if args.quick { "quick" } else { "full" },
        machine.cpu,
        machine.cores,
        machine.load_start
    );

    // Allocation counts first: the counter is process-wide.
    eprintln!("allocations per call...");
    let allocs = alloc::run();
    eprintln!("native format against raw HMAC...");
    let native = native::run(effort);
    let overheads = native::overheads(effort);
    eprintln!("Fernet decrypt against its limit...");
    let fernet = fernet::run(effort);
    eprintln!("throughput on every core, contention...");
    let cores = cores::run(effort, machine.cores);
    eprintln!("Django format against Django and itsdangerous...");
    let django = django::run(effort, args.quick);
    eprintln!("the keyroll Python package against Django...");
    let python = python::run(args.quick);
    eprintln!("what a Django or Flask request pays, against a static key...");
    let frameworks = frameworks::run(args.quick);
    eprintln!("the keyroll npm package against plain Node...");
    let node = node::run(args.quick);
    eprintln!("signed cookies against cookie-rs...");
    let cookies = cookies::run(effort);
    eprintln!("latency under key swaps...");
    let swaps = if args.quick {
        swaps::run(2, Duration::from_millis(20))
    } else {
        swaps::run(10, Duration::from_millis(250))
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    eprintln!("file change to new key in use...");
    let file = runtime.block_on(file::run(if args.quick { 10 } else { 200 }));
    let replicas = args.replicas.unwrap_or(if args.quick { 20 } else { 1_000 });
    let interval = Duration::from_millis(if args.quick { 1_000 } else { args.fleet_interval_ms });
    eprintln!("fleet of {replicas} replicas against OpenBao...");
    let fleet = runtime.block_on(fleet::run(fleet::FleetConfig {
        replicas,
        interval,
        jitter: interval / 10,
        metadata_every: keyroll_vault::DEFAULT_METADATA_EVERY,
        publications: if args.quick { 1 } else { 3 },
    }));
    drop(runtime);

    machine.load_end = read("/proc/loadavg").trim().to_owned();
    let results = Results {
        machine,
        effort,
        native,
        overheads,
        fernet,
        cores,
        allocs,
        django,
        python,
        frameworks,
        node,
        cookies,
        swaps,
        file,
        fleet,
    };
    if let Err(error) = plots(&results, &args.img_dir) {
        eprintln!("keyroll-bench: cannot draw the plots: {error}");
        std::process::exit(1);
    }
    let markdown = report::markdown(&results);
    if let Some(parent) = args.out.parent() {
        std::fs::create_dir_all(parent).expect("create the report's directory");
    }
    std::fs::write(&args.out, &markdown).expect("write the report");
    println!("{markdown}");
    eprintln!(
        "keyroll-bench: wrote {} and {}",
        args.out.display(),
        args.img_dir.display()
    );
}
