//! The "Every core" section: throughput by thread count and the contention test.

use std::fmt::Write as _;

use super::{Results, format_ns};
use crate::cores::CoreResults;

/// The throughput table of the multi-core section, in Markdown.
pub fn scaling_table(c: &CoreResults) -> String {
    let first = c.scaling[0];
    let mut md = "| threads | raw verifies/s | gain | native verifies/s | gain | native gain / raw gain | native / raw \
                  | control verifies/s | control gain / raw gain |\n|---|---|---|---|---|---|---|---|---|\n"
        .to_owned();
    for s in &c.scaling {
        let _ = writeln!(
            md,
            "| {} | {:.2} M | {:.2}x | {:.2} M | {:.2}x | {:.2}x | {:.2}x | {:.2} M | {:.2}x |",
            s.threads,
            s.raw / 1e6,
            s.raw / first.raw,
            s.native / 1e6,
            s.native / first.native,
            s.relative_scaling(&first),
            s.native / s.raw,
            s.shared_write / 1e6,
            s.control_scaling(&first),
        );
    }
    md
}

pub(super) fn cores_section(r: &Results) -> String {
    let c = &r.cores;
    let first = c.scaling[0];
    let mut md = format!(
        "\n## Every core\n\nThroughput of native `verify_encoded` with one shared key ring and one current \
         key (the case of a real service: every thread verifies tokens of the same key) against the raw \
         limit, at each thread count up to the machine's {} cores. The *control* is native \
         `verify_encoded` followed by one `fetch_add` on one `AtomicU64` that every thread writes (a \
         per-key counter shared by all threads, as keyroll once had): it shows what this measurement \
         makes of a single shared write per verify.\n\n\
         Each trial runs one case for {} ms on N threads, thread i pinned to CPU i; the threads start \
         together (a barrier, then a spin until all run) and each times itself. The cases and thread \
         counts alternate trial by trial, {} trials each, and the median trial counts. *Gain* is the \
         throughput at N threads over that at one; the target compares native's gain with raw's.\n\n",
        r.machine.cores,
        c.trial.as_millis(),
        c.trials
    );
    md += &scaling_table(c);
    md += "\nUnpinned and timed by the main thread, this measurement once showed the raw loop gaining more \
           than its thread count: the scheduler often put two new threads on one CPU for milliseconds, \
           and the main thread could lose its CPU after releasing the barrier, before it read the clock. \
           Pinned and self-timed, raw's gain is its thread count to within noise (the table above).\n";
    let k = &c.contention;
    let last = c.scaling.last().copied().unwrap_or(first);
    let _ = writeln!(
        md,
        "\n### Contention: one counter line against per-thread slots\n\n{} threads increment at once \
         (pinned and started as above; medians of interleaved trials, ns per increment per thread, the \
         slowest thread's time):\n\n\
         | counter | 1 thread | {} threads | slowdown |\n|---|---|---|---|\n\
         | one `AtomicU64`, `fetch_add` (every core writes one cache line) | {} | {} | {:.1}x |\n\
         | keyroll's `KeyEntry::record_verification` (a slot per thread) | {} | {} | {:.1}x |\n\n\
         A write to one line from several cores moves the line between their caches on every write; \
         with a slot per thread each core writes only lines it owns, and the total is summed when read \
         (`KeyEntry::verifications`). In this tight loop a core often writes the line several times \
         before it loses it; inside a verify, one write every {} or so, the line has to move at nearly \
         every write and the whole trip is paid each time: the control above gains {:.2}x raw's gain \
         at {} threads, where native gains {:.2}x. The trip is longer the farther apart the two CPUs \
         are, and on a virtual machine the host decides that: while this section was written the \
         control lost from about 1% to about 40% of raw's gain from one run to the next, and native's \
         figure did not move.\n\n\
         On 64 cores: nothing a verify writes is shared. Each thread reads its own reference to the \
         derived keys (`DerivedCache`, one slot per thread) and the key ring's generation and \
         closed flag, which change only on a swap; it reads the coarse clock from the vDSO; it \
         counts in its own slot of the key's counter. Memory written by one core and read by another \
         is touched only when a new key set is installed (once per rotation or refresh that changed \
         something), so verify throughput grows with cores as the bare HMAC does, bounded by the \
         cores' own SHA-256 speed and shared caches. The cost is memory: one 128-byte slot per thread \
         per key, and one per thread per signer, for each thread that has verified.\n",
        k.threads,
        k.threads,
        format_ns(k.shared_alone),
        format_ns(k.shared),
        k.shared / k.shared_alone,
        format_ns(k.sharded_alone),
        format_ns(k.sharded),
        k.sharded / k.sharded_alone,
        format_ns(1e9 / first.native),
        last.control_scaling(&first),
        last.threads,
        last.relative_scaling(&first),
    );
    md
}
