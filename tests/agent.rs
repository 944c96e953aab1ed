//! `keyroll::ops::Agent`, the library's agent: what `keyroll agent` runs.

use std::time::Duration;

use keyroll::Refresher;
use keyroll::ops::{Agent, AgentError};

const KEY: &str = "agent-test-key-0123456789abcdefghijklmnopqrstuvwxyz";

fn agent(dir: &std::path::Path) -> Agent {
    let source = dir.join("source");
    let builder = Refresher::builder(keyroll::open(&format!("file://{}", source.display())).expect("opens"))
        .interval(Duration::from_millis(10));
    Agent::new(builder, dir.join("keys.json")).expect("no rotation period to refuse")
}

#[tokio::test]
async fn a_poll_writes_what_the_store_holds_once_and_a_refused_answer_all_the_same() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("source"), format!("{KEY}\n")).unwrap();
    let agent = agent(dir.path());

    let first = agent.poll().await.expect("polls");
    assert!(first.written && first.refused.is_none());
    assert_eq!(first.versions, 1);
    let line = first.line(agent.out()).expect("a line for a write");
    assert!(
        line.contains("wrote 1 version(s) to") && !line.contains(KEY),
        "{line}"
    );
    let written = std::fs::read_to_string(agent.out()).unwrap();
    assert!(written.contains(KEY));

    let again = agent.poll().await.expect("polls");
    assert!(
        !again.written && again.line(agent.out()).is_none(),
        "unchanged: not rewritten"
    );

    // A weak key: written as the store holds it, and the verdict says why.
    std::fs::write(dir.path().join("source"), "short\n").unwrap();
    let weak = agent.poll().await.expect("polls");
    assert!(weak.written);
    let refused = weak.refused.expect("the policy refuses a weak key").to_string();
    assert!(refused.contains("weak"), "{refused}");
}

#[tokio::test]
async fn a_store_that_cannot_be_read_marks_the_file_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("source"), format!("{KEY}\n")).unwrap();
    let agent = agent(dir.path());
    agent.poll().await.expect("polls");
    std::fs::remove_file(dir.path().join("source")).unwrap();
    let error = agent.poll().await.expect_err("the source is gone");
    assert!(matches!(error, AgentError::Unreadable { .. }));
    assert!(
        error.to_string().contains("unavailable until it answers"),
        "{error}"
    );
}

#[tokio::test]
async fn run_polls_every_interval_until_stopped() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("source"), format!("{KEY}\n")).unwrap();
    let agent = agent(dir.path());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut stop = Some(stop);
    let mut polls = 0;
    agent
        .run(stopped, |poll| {
            poll.expect("polls");
            polls += 1;
            if polls == 3 {
                stop.take().expect("stopped once").send(()).unwrap();
            }
        })
        .await;
    assert_eq!(polls, 3);
}

#[test]
fn a_rotation_period_is_checked_against_the_delay_of_the_agents_own_interval() {
    let store = keyroll_testkit::memory::MemoryStore::new();
    let period = Duration::from_secs(120);
    let out = std::env::temp_dir().join("keyroll-agent-period-check.json");
    // The default interval (30 s) gives a shared store a delay under 2 min.
    let builder = Refresher::builder(store.clone()).rotate_every(period);
    assert!(Agent::new(builder, &out).is_ok());
    // An agent polling every 5 min makes a key known up to 5 min late: a
    // 2 min period would replace keys before some hosts saw them.
    let builder = Refresher::builder(store)
        .interval(Duration::from_secs(300))
        .rotate_every(period);
    match Agent::new(builder, &out) {
        Err(keyroll::rotation::RotationError::ShorterThanActivation {
            period: refused,
            delay,
        }) => {
            assert_eq!(refused, period);
            assert!(delay > Duration::from_secs(300), "{delay:?}");
        }
        other => panic!("not refused for the delay: {other:?}"),
    }
}
