//! Turns the measurements into `docs/BENCHMARKS.md`.

use std::fmt::Write as _;
use std::time::Duration;

use crate::alloc::AllocRow;
use crate::cookies::CookieResults;
use crate::cores::CoreResults;
use crate::django::{DjangoResults, TARGET_KEYS};
use crate::fernet::FernetResults;
use crate::file::FileResults;
use crate::fleet::FleetResults;
use crate::frameworks::{self, FrameworkResults};
use crate::measure::{Effort, Percentiles};
use crate::native::{NativeResults, Overheads};
use crate::node::{self, NodeResults};
pub(crate) use crate::plot::format_ns;
use crate::python::PythonResults;
use crate::swaps::SwapResults;

mod every_core;
mod targets;

use every_core::cores_section;
pub use every_core::scaling_table;
pub use targets::targets;

/// The machine and what else ran on it.
#[derive(Debug, Clone, Default)]
pub struct Machine {
    /// CPU model from /proc/cpuinfo.
    pub cpu: String,
    /// Cores available.
    pub cores: usize,
    /// /proc/loadavg when the run started.
    pub load_start: String,
    /// /proc/loadavg when it ended.
    pub load_end: String,
    /// The busiest other processes at the start (`ps`).
    pub busy: String,
    /// `rustc --version`.
    pub rustc: String,
    /// When the run started (UTC).
    pub date: String,
}

/// Everything one run measured.
#[derive(Debug, Clone)]
pub struct Results {
    /// The machine.
    pub machine: Machine,
    /// Quick smoke run or full measurement.
    pub effort: Effort,
    /// Native format.
    pub native: NativeResults,
    /// Where native verify spends beyond the HMAC.
    pub overheads: Overheads,
    /// Fernet decrypt against its limit.
    pub fernet: FernetResults,
    /// Throughput on every core and the contention test.
    pub cores: CoreResults,
    /// Allocations per call.
    pub allocs: Vec<AllocRow>,
    /// Django format against Django and itsdangerous.
    pub django: Option<DjangoResults>,
    /// The keyroll Python package against Django.
    pub python: Option<PythonResults>,
    /// What a Django or Flask request pays against a static key.
    pub frameworks: Option<FrameworkResults>,
    /// The npm package against plain Node.
    pub node: Option<NodeResults>,
    /// Cookie reads against cookie-rs.
    pub cookies: CookieResults,
    /// Latency under key swaps.
    pub swaps: SwapResults,
    /// File propagation.
    pub file: FileResults,
    /// Fleet against OpenBao.
    pub fleet: Option<FleetResults>,
}

/// A stated target and whether this run met it.
#[derive(Debug, Clone)]
pub struct Target {
    /// The target as stated.
    pub goal: String,
    /// What was measured.
    pub measured: String,
    /// Met or not (`None`: not measured in this run).
    pub met: Option<bool>,
    /// For a missed target: what limits it.
    pub limit: String,
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn ns(d: Duration) -> String {
    format_ns(d.as_nanos() as f64)
}

fn python_section(md: &mut String, p: &PythonResults) {
    let _ = writeln!(
        md,
        "\n## The Python package against Django\n\n`keyroll.open(...).django_signer().unsign(token)` against \
         Django {}'s `Signer(key, fallback_keys).unsign(token)` on Python {}, {} keys held, the same tokens, \
         interleaved `timeit` rounds, best round (`crates/keyroll-py/bench/django_verify.py`).\n\n\
         | token of | keyroll (Python) | Django | Django / keyroll |\n|---|---|---|---|",
        p.django, p.python, p.keys
    );
    for row in &p.rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.1}x |",
            row.token,
            format_ns(row.keyroll_ns),
            format_ns(row.django_ns),
            row.django_ns / row.keyroll_ns
        );
    }
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "**met**",
        Some(false) => "**not met**",
        None => "not measured",
    }
}

fn row_ratio(label: &str, t: f64, base: f64) -> String {
    format!("| {label} | {} | {:.2}x |\n", format_ns(t), t / base)
}

/// The whole report as Markdown.
pub fn markdown(r: &Results) -> String {
    let mut md = String::new();
    let m = &r.machine;
    let _ = writeln!(
        md,
        "# Benchmarks\n\nWritten by `scripts/bench` (the `keyroll-bench` binary, release build) on {}. \
         Absolute times drift on a shared machine, so every comparison is a ratio of cases measured in \
         the same run, interleaved round by round (each round runs every case {} times; {} rounds; the \
         median round is reported unless said otherwise). keyroll is built as a service that exports \
         its metrics runs it: `keyroll-core` with its `metrics` feature, every verification counted \
         per key, role and format.{}\n",
        m.date,
        r.effort.per_round,
        r.effort.rounds,
        if r.effort == Effort::QUICK {
            "\n\n> **Quick smoke run: the figures below are noise, not measurements.**"
        } else {
            ""
        }
    );
    let _ = writeln!(md, "## Machine\n");
    let _ = writeln!(md, "| | |\n|---|---|");
    let _ = writeln!(md, "| CPU | {} |", m.cpu);
    let _ = writeln!(md, "| cores (nproc) | {} |", m.cores);
    let _ = writeln!(md, "| load average at start | {} |", m.load_start);
    let _ = writeln!(md, "| load average at end | {} |", m.load_end);
    let _ = writeln!(md, "| rustc | {} |", m.rustc);
    if let Some(d) = &r.django {
        let _ = writeln!(md, "| Python | {} |", d.python);
        let _ = writeln!(md, "| Django | {} |", d.django);
        let _ = writeln!(md, "| itsdangerous | {} |", d.itsdangerous);
    }
    let _ = writeln!(
        md,
        "\nOther work on the machine during the run (other engineers fuzz and build here; the busiest \
         processes at the start, `ps -eo pcpu,comm`):\n\n```text\n{}\n```\n",
        m.busy.trim_end()
    );

    let _ = writeln!(md, "## Targets\n");
    let _ = writeln!(md, "| target | measured | verdict |\n|---|---|---|");
    let targets = targets(r);
    for t in &targets {
        let _ = writeln!(md, "| {} | {} | {} |", t.goal, t.measured, verdict(t.met));
    }
    let missed: Vec<&Target> = targets.iter().filter(|t| t.met == Some(false)).collect();
    if !missed.is_empty() {
        let _ = writeln!(md, "\nWhat limits each missed target:\n");
        for t in missed {
            let _ = writeln!(md, "- *{}* ({}): {}", t.goal, t.measured, t.limit);
        }
    }

    let n = &r.native;
    let _ = writeln!(
        md,
        "\n## Native format against the limit\n\nThe limit is the fastest correct verify of the same \
         bytes: a raw `Hmac<Sha256>`, keyed once beforehand, cloned, updated over exactly the bytes a \
         token's MAC covers, finalized, and the 32 bytes compared with `constant_time_eq_32` (the compare \
         keyroll uses; not `verify_slice`, whose per-byte barrier is slower) against the expected MAC \
         already decoded: no parsing, no key lookup, no clock. The limit of signing is the raw token: \
         the ready prefix and key id, the value base64url-encoded into a new `String`, the MAC over it \
         and its base64url text.\n"
    );
    let _ = writeln!(md, "| case | ns/op | ratio to raw HMAC |\n|---|---|---|");
    md += &row_ratio(
        "raw pre-keyed HMAC-SHA256 verify",
        n.raw_verify.median,
        n.raw_verify.median,
    );
    md += &row_ratio(
        "native `verify_encoded`, 1 key",
        n.with(1).newest.median,
        n.raw_verify.median,
    );
    md += &row_ratio(
        "native `verify_encoded`, current key, a fallback whose window closes ahead (roles' deadline checked on the coarse clock)",
        n.with_deadline.median,
        n.raw_verify.median,
    );
    md += &row_ratio(
        "native `verify` (decodes to `String`), 1 key",
        n.verify_decoded.median,
        n.raw_verify.median,
    );
    md += &row_ratio(
        "raw token: encode, MAC, encode the MAC",
        n.raw_sign.median,
        n.raw_sign.median,
    );
    md += &row_ratio("native `sign`, 1 key", n.sign_one.median, n.raw_sign.median);
    md += &row_ratio("native `sign`, 16 keys", n.sign_sixteen.median, n.raw_sign.median);
    let _ = writeln!(md, "\nVerify with more keys held (`verify_encoded`):\n");
    let _ = writeln!(
        md,
        "| keys held | newest key's token | ratio to 1 key | oldest key's token | ratio to 1 key |\n|---|---|---|---|---|"
    );
    let one = n.with(1).newest.median;
    for b in &n.by_keys {
        let _ = writeln!(
            md,
            "| {} | {} | {:.2}x | {} | {:.2}x |",
            b.keys,
            format_ns(b.newest.median),
            b.newest.median / one,
            format_ns(b.oldest.median),
            b.oldest.median / one
        );
    }
    let o = &r.overheads;
    let _ = writeln!(
        md,
        "\nWhere a native verify spends beyond the raw HMAC (each part timed alone, same run):\n\n\
         | part | ns/op |\n|---|---|\n\
         | role snapshot check with a deadline ahead (`RoleSnapshot::now`: coarse clock, deadline compare; none without one) | {} |\n\
         | for comparison: `SystemTime::now()`, which the snapshot saves | {} |\n\
         | decoding the token's 43-character MAC to four words (`MacText::decode`; independent of the HMAC, so it overlaps it) | {} |\n\
         | `DerivedCache::get` (the thread's own reference, generation compare) | {} |\n\
         | verification counter (load and store in the thread's slot) | {} |\n\
         | **native minus raw, measured** | {} |\n",
        format_ns(o.roles.median),
        format_ns(o.clock.median),
        format_ns(o.mac_decoding.median),
        format_ns(o.derived_load.median),
        format_ns(o.counter.median),
        format_ns(one - n.raw_verify.median),
    );
    md += &cores_section(r);
    let f = &r.fernet;
    let _ = writeln!(
        md,
        "## Fernet decrypt against the limit\n\nOne key, a {}-character token of a {}-byte plaintext, no \
         TTL. The limit decodes the token into one buffer, checks version and layout, clones a pre-keyed \
         HMAC-SHA256 over everything before the MAC, compares 32 bytes with `constant_time_eq_32`, \
         decrypts AES-128-CBC in place with a pre-expanded key and unpads (one allocation, the result).\n\n\
         | case | ns/op | ratio |\n|---|---|---|",
        f.token_len,
        crate::fernet::PLAINTEXT.len()
    );
    md += &row_ratio("raw decrypt", f.raw.median, f.raw.median);
    md += &row_ratio(
        "keyroll-fernet `Encrypter::decrypt`",
        f.keyroll.median,
        f.raw.median,
    );
    md.push('\n');

    let _ = writeln!(
        md,
        "## Allocations\n\nCounted by a counting global allocator (`stats_alloc`) in the bench binary, \
         10,000 calls each, no other thread running:\n\n| call | allocations per call | bytes per call |\n|---|---|---|"
    );
    for a in &r.allocs {
        let _ = writeln!(md, "| {} | {:.2} | {:.1} |", a.what, a.allocations, a.bytes);
    }
    if let Some(hot) = r.allocs.first() {
        let _ = writeln!(
            md,
            "\nThe hot path `Signer::verify_encoded` allocates {}. `verify` allocates the decoded value \
             (the `Vec<u8>` from base64, turned into the returned `String`); `sign` allocates the token; \
             a Fernet decrypt allocates the decoded token, decrypts it in place and returns that buffer \
             as the plaintext.\n",
            if hot.allocations == 0.0 {
                "nothing".to_owned()
            } else {
                format!("{:.2} times per call", hot.allocations)
            }
        );
    }

    let _ = writeln!(
        md,
        "## Verify time against keys held\n\n![verify time against keys held](img/verify-vs-keys.svg)\n"
    );

    if let Some(d) = &r.django {
        let _ = writeln!(
            md,
            "## Django format against Django and itsdangerous\n\nSame tokens on both sides: Django {} \
             signs them (`Signer(key, fallback_keys)`, default salt), keyroll-django's `Signer::verify` \
             and Django's `Signer.unsign` verify them, and itsdangerous {} reads them too (configured \
             for Django's format: `django-concat` key derivation, SHA-256, separator `:`). Python times \
             itself with `timeit`, every case interleaved round by round (15 rounds of about 20 ms each), in \
             two runs; keyroll is measured between and after them, interleaved too; each side's best \
             round is compared (`timeit`'s statistic). `{TARGET_KEYS}` keys = `SECRET_KEY` + 16 \
             `SECRET_KEY_FALLBACKS`.\n",
            d.django, d.itsdangerous
        );
        let _ = writeln!(
            md,
            "| keys held | token of | keyroll-django | Django | Django / keyroll | itsdangerous | itsdangerous / keyroll |\n|---|---|---|---|---|---|---|"
        );
        for row in &d.unsign {
            if row.keys == 1 && row.token == "oldest" {
                continue;
            }
            let its = row.itsdangerous_ns.unwrap_or(f64::NAN);
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {:.1}x | {} | {:.1}x |",
                row.keys,
                if row.token == "newest" {
                    "current key"
                } else {
                    "oldest fallback"
                },
                format_ns(row.keyroll_ns),
                format_ns(row.django_ns),
                row.django_ns / row.keyroll_ns,
                format_ns(its),
                its / row.keyroll_ns
            );
        }
        let one = d.unsign_row(1, "newest");
        let _ = writeln!(
            md,
            "\nThe limit for this format: a raw pre-keyed HMAC-SHA256 over the bytes the one-key token's \
             MAC covers takes {} in the same run; keyroll-django's one-key verify is {:.2}x that, and \
             Django's unsign {:.1}x. Verify time per key tried for the oldest of 64 keys: keyroll-django \
             {}, Django {}.",
            format_ns(d.raw_ns),
            one.keyroll_ns / d.raw_ns,
            one.django_ns / d.raw_ns,
            format_ns(d.unsign_row(64, "oldest").keyroll_ns / 64.0),
            format_ns(d.unsign_row(64, "oldest").django_ns / 64.0),
        );
        let _ = writeln!(
            md,
            "\n`signing.loads` (JSON, timestamped, salt `django.core.signing`) against keyroll-django's \
             `TimestampSigner::for_dumps(..).verify_object::<serde_json::Value>`:\n\n\
             | keys held | token of | keyroll-django | Django | Django / keyroll |\n|---|---|---|---|---|"
        );
        for row in &d.loads {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {:.1}x |",
                row.keys,
                if row.token == "newest" {
                    "current key"
                } else {
                    "16th fallback"
                },
                format_ns(row.keyroll_ns),
                format_ns(row.django_ns),
                row.django_ns / row.keyroll_ns
            );
        }
        md.push('\n');
    }
    if let Some(p) = &r.python {
        python_section(&mut md, p);
        md.push('\n');
    }
    if let Some(f) = &r.frameworks {
        frameworks::section(&mut md, f);
        md.push('\n');
    }
    if let Some(n) = &r.node {
        node::section(&mut md, n);
        md.push('\n');
    }

    let c = &r.cookies;
    let _ = writeln!(
        md,
        "## Signed cookies against cookie-rs\n\nReading one signed session cookie. cookie-rs \
         (`cookie` 0.18, `SignedJar::verify`, the jar axum-extra and tower-cookies sign with) holds one \
         key: across a rotation an application asks one jar per accepted key, newest first. Each try keys \
         a new HMAC from the jar's key (two more SHA-256 compressions) and takes an owned `Cookie`, as \
         its API requires. keyroll-axum's `CookieKeys::verify` binds the cookie name, carries the issue \
         time and re-issue information and returns the value as a `String`; the native `verify_encoded` \
         is the bare format.\n\n\
         | reader | 1 key | 16 keys, cookie of the oldest | 1 key, ratio to cookie-rs |\n|---|---|---|---|"
    );
    for (name, one, sixteen) in [
        ("cookie-rs `SignedJar`", &c.cookie_one, &c.cookie_sixteen_oldest),
        (
            "keyroll-axum `CookieKeys::verify`",
            &c.axum_one,
            &c.axum_sixteen_oldest,
        ),
        (
            "keyroll native `verify_encoded`",
            &c.native_one,
            &c.native_sixteen_oldest,
        ),
    ] {
        let _ = writeln!(
            md,
            "| {name} | {} | {} | {:.2}x |",
            format_ns(one.median),
            format_ns(sixteen.median),
            one.median / c.cookie_one.median
        );
    }

    let s = &r.swaps;
    let pct = |p: &Percentiles| format!("{} | {} | {} | {}", ns(p.p50), ns(p.p99), ns(p.p999), p.samples);
    let _ = writeln!(
        md,
        "\n## Verify latency under key swaps\n\nNative `verify_encoded` with {} keys, timed call by call \
         (each sample includes about {} of `Instant::now()` overhead), in alternating phases: idle (no \
         other thread) and while another thread builds and installs a new key set (a new generation) \
         {} times per second (achieved: {:.0}/s).\n\n| | p50 | p99 | p99.9 | samples |\n|---|---|---|---|---|\n\
         | idle | {} |\n| under swaps | {} |\n| ratio | {:.2}x | {:.2}x | {:.2}x | |\n\n\
         ![verify latency percentiles under key swaps](img/swap-latency.svg)\n",
        crate::swaps::KEYS,
        ns(s.timer_overhead),
        crate::swaps::RATE,
        s.achieved_rate,
        pct(&s.idle),
        pct(&s.swapping),
        s.swapping.p50.as_secs_f64() / s.idle.p50.as_secs_f64(),
        s.swapping.p99.as_secs_f64() / s.idle.p99.as_secs_f64(),
        s.swapping.p999.as_secs_f64() / s.idle.p999.as_secs_f64(),
    );

    let f = &r.file;
    let _ = writeln!(
        md,
        "## File change to new key in use\n\nA `FileProvider` (plain-text key file) with a running \
         `Refresher` (default 30 s poll, so only the watch counts). Each rotation writes a new file \
         beside the key file and renames it over; timed until the keyring signs with the new key. Most \
         of the time is the refresher's 20 ms settle period after a file event (so that a burst of events \
         causes one read of the finished file).\n\n\
         | rotations | p50 | p99 | max |\n|---|---|---|---|\n| {} | {} | {} | {} |\n",
        f.rotations,
        ms(f.latency.p50),
        ms(f.latency.p99),
        ms(f.max)
    );

    match &r.fleet {
        Some(fl) => {
            let c = fl.config;
            let _ = writeln!(
                md,
                "## Fleet against one OpenBao\n\n{} replicas in one process, each a real `VaultProvider` \
                 with its own `Refresher` (poll interval {} ± {} jitter), against one OpenBao dev server \
                 (KV v2) on the same machine. The store's audit log counts the requests it received \
                 (the operator's own write is subtracted) and each replica counts its polls. Each \
                 replica reads the secret's metadata every {}th poll (from a random start) and \
                 otherwise only the newest version. Starting all replicas took {}.\n\n\
                 While nothing changes: {:.0} store requests/s, {:.2} per poll, {:.2} per replica per \
                 interval.\n\n\
                 | publication | replicas holding the new version: p50 | p99 | all | counted over | polls | metadata reads | data-path reads | requests per poll | per replica per interval |\n|---|---|---|---|---|---|---|---|---|---|",
                c.replicas,
                ms(c.interval),
                ms(c.jitter),
                c.metadata_every,
                ms(fl.startup),
                fl.steady_per_second,
                fl.steady_per_poll,
                fl.steady_per_replica_interval
            );
            for (i, p) in fl.publications.iter().enumerate() {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {:.2} | {:.2} |",
                    i + 1,
                    ms(p.held.p50),
                    ms(p.held.p99),
                    ms(p.all),
                    ms(p.window),
                    p.polls,
                    p.metadata_reads,
                    p.data_reads,
                    p.per_poll(),
                    p.per_replica_interval(&c)
                );
            }
            let _ = writeln!(
                md,
                "\n\"Holding\" means the version is in the replica's key set (as a pending key: with the \
                 default staged activation no replica signs with it before interval + jitter + the \
                 clock-skew margin, by which time all hold it). A poll cycle is interval + jitter from \
                 the write.\n"
            );
        }
        None => {
            let _ = writeln!(
                md,
                "## Fleet against one OpenBao\n\nNot measured: OpenBao is not installed.\n"
            );
        }
    }
    let _ = writeln!(
        md,
        "## Reproduce\n\n```sh\nscripts/bench            # full run, about 2 minutes; rewrites this file and docs/img/*.svg\nscripts/bench --quick    # smoke run\n```"
    );
    md
}

#[cfg(test)]
mod tests;
