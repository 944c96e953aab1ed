//! `keyroll::ops::Agent`, the library's agent: what `keyroll agent` runs.

use std::time::Duration;

use keyroll::Refresher;
use keyroll::ops::{Agent, AgentError};

const KEY: &str = "agent-test-key-0123456789abcdefghijklmnopqrstuvwxyz";

fn agent(dir: &std::path::Path) -> Agent {
    let source = dir.join("source");
    let builder = Refresher::builder(keyroll::open(&format!("file://{}", source.display())).expect("opens"));
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
        .run(Duration::from_millis(10), stopped, |poll| {
            poll.expect("polls");
            polls += 1;
            if polls == 3 {
                stop.take().expect("stopped once").send(()).unwrap();
            }
        })
        .await;
    assert_eq!(polls, 3);
}
