//! Interop with a real Django app (signed_cookies session backend) sharing
//! the key file: each accepts the other's session cookie, across a rotation.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::{TestApp, key_id, new_key};
use keyroll_axum::CookieKind;
use keyroll_core::Policy;

/// The Django app of `tests/django_app.py`, reading `keys` at start (as
/// Django reads its settings once).
struct Django {
    base: String,
    child: Child,
}

impl Django {
    fn start(python: &Path, keys: &Path) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/django_app.py");
        let mut child = Command::new(python)
            .arg(script)
            .arg(keys)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("Django prints its port");
        let port: u16 = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("not a port: {line:?}"));
        Self {
            base: format!("http://127.0.0.1:{port}"),
            child,
        }
    }
}

impl Drop for Django {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn django_python() -> Option<std::path::PathBuf> {
    keyroll_testkit::python::python_with(&["django"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_app_accepts_the_session_cookie_set_by_django() {
    let Some(python) = django_python() else { return };
    let key = new_key();
    let app = TestApp::start(&[&key], Policy::default()).await;
    let django = Django::start(&python, &app.keys_path);

    let reply = app.post_form_at(&django.base, "/login", "user=alice", &[]).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let sessionid = reply.cookie("sessionid").expect("Django sets the session cookie");

    let reply = app.get("/django/me", &[("sessionid", &sessionid)]).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "alice"));
    assert!(
        reply.cookie("sessionid").is_none(),
        "signed with the current key: no re-issue"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn django_accepts_the_session_cookie_set_by_the_rust_app() {
    let Some(python) = django_python() else { return };
    let key = new_key();
    let app = TestApp::start(&[&key], Policy::default()).await;
    let django = Django::start(&python, &app.keys_path);

    let reply = app.post_form("/django/login", "user=bob", &[]).await;
    let sessionid = reply.cookie("sessionid").expect("session cookie set");
    let reply = app
        .get_at(&django.base, "/me", &[("sessionid", &sessionid)])
        .await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "bob"));

    // Neither side accepts a tampered session.
    let tampered = sessionid.replacen(':', "A:", 1);
    assert_eq!(
        app.get_at(&django.base, "/me", &[("sessionid", &tampered)])
            .await
            .status,
        401
    );
    assert_eq!(
        app.get("/django/me", &[("sessionid", &tampered)]).await.status,
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn django_session_survives_a_rotation_and_the_reissue_is_read_by_django() {
    let Some(python) = django_python() else { return };
    let (old, new) = (new_key(), new_key());
    let app = TestApp::start(&[&old], Policy::default()).await;
    let sessionid = {
        let django = Django::start(&python, &app.keys_path);
        let reply = app.post_form_at(&django.base, "/login", "user=carol", &[]).await;
        reply.cookie("sessionid").expect("Django sets the session cookie")
    };

    app.rotate_to(&[&new, &old]).await;
    let reply = app.get("/django/me", &[("sessionid", &sessionid)]).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "carol"));
    let reissued = reply.cookie("sessionid").expect("re-issued with the new key");
    let reissues = app.reissues();
    assert_eq!(reissues.len(), 1);
    assert_eq!(reissues[0].kind, CookieKind::DjangoSession);
    assert_eq!(&*reissues[0].verified_by.id, key_id(&old));
    assert_eq!(&*reissues[0].signed_by, key_id(&new));

    // Django restarted on the rotated file (SECRET_KEY=new, fallbacks=[old])
    // reads both; once the old key is dropped, only the re-issued one.
    {
        let django = Django::start(&python, &app.keys_path);
        for cookie in [&sessionid, &reissued] {
            let reply = app.get_at(&django.base, "/me", &[("sessionid", cookie)]).await;
            assert_eq!((reply.status, reply.body.as_str()), (200, "carol"));
        }
    }
    app.rotate_to(&[&new]).await;
    let django = Django::start(&python, &app.keys_path);
    let reply = app.get_at(&django.base, "/me", &[("sessionid", &reissued)]).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "carol"));
    assert_eq!(
        app.get_at(&django.base, "/me", &[("sessionid", &sessionid)])
            .await
            .status,
        401
    );
    assert_eq!(
        app.get("/django/me", &[("sessionid", &sessionid)]).await.status,
        401
    );
}
