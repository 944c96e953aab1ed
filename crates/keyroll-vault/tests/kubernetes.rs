//! Kubernetes login against a real OpenBao dev server.
//!
//! OpenBao's Kubernetes method asks the cluster's TokenReview API whether a
//! service-account JWT is genuine. There is no Kubernetes cluster in the test
//! environment, so the test runs the one endpoint OpenBao calls
//! (`POST /apis/authentication.k8s.io/v1/tokenreviews`) on a loopback port:
//! it accepts exactly the JWT the test issued, for `default/app`. Everything
//! on the Vault side (config, role binding, claims checks, token issue) is
//! the real OpenBao.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use common::{builder, put, read_only_policy};
use keyroll_core::{FromSource, KeyProvider, ProviderErrorKind};
use keyroll_testkit::conformance::strong_key;
use keyroll_testkit::openbao::OpenBao;
use keyroll_vault::{Auth, Credential, VaultProvider};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NAMESPACE: &str = "default";
const ACCOUNT: &str = "app";
const UID: &str = "8e2f0d2c-3c8d-4c3e-9a55-3b1f0d9e7a11";

/// A service-account JWT as the kubelet mounts it (claims only: OpenBao
/// leaves the signature to the TokenReview API).
fn service_account_jwt(account: &str) -> String {
    let header = B64.encode(r#"{"alg":"RS256","kid":"test","typ":"JWT"}"#);
    let claims = serde_json::json!({
        "iss": "kubernetes/serviceaccount",
        "sub": format!("system:serviceaccount:{NAMESPACE}:{account}"),
        "kubernetes.io/serviceaccount/namespace": NAMESPACE,
        "kubernetes.io/serviceaccount/service-account.name": account,
        "kubernetes.io/serviceaccount/service-account.uid": UID,
        "kubernetes.io/serviceaccount/secret.name": format!("{account}-token"),
    });
    let signature = B64.encode(strong_key());
    format!("{header}.{}.{signature}", B64.encode(claims.to_string()))
}

/// Serves TokenReview: the JWTs in `genuine` are authentic, for the service
/// account paired with each; any other is refused. Counts the reviews.
async fn token_review_api(genuine: Vec<(String, &'static str)>) -> (u16, Arc<AtomicUsize>) {
    let listener = keyroll_testkit::ports::tokio_listener();
    let port = listener.local_addr().unwrap().port();
    let reviews = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&reviews);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let genuine = genuine.clone();
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                let body = loop {
                    let n = stream.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).into_owned();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (name, value) = l.split_once(':')?;
                                name.eq_ignore_ascii_case("content-length")
                                    .then(|| value.trim().parse().ok())?
                            })
                            .unwrap_or(0usize);
                        if request.len() >= end + 4 + length {
                            break text[end + 4..end + 4 + length].to_owned();
                        }
                    }
                };
                counter.fetch_add(1, Ordering::SeqCst);
                let review: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                let account = genuine
                    .iter()
                    .find(|(jwt, _)| review["spec"]["token"].as_str() == Some(jwt.as_str()))
                    .map(|(_, account)| *account);
                let status = if let Some(account) = account {
                    serde_json::json!({
                        "authenticated": true,
                        "user": {
                            "username": format!("system:serviceaccount:{NAMESPACE}:{account}"),
                            "uid": UID,
                            "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{NAMESPACE}")]
                        }
                    })
                } else {
                    serde_json::json!({"authenticated": false, "error": "invalid bearer token"})
                };
                let answer = serde_json::json!({
                    "kind": "TokenReview",
                    "apiVersion": "authentication.k8s.io/v1",
                    "metadata": {"creationTimestamp": null},
                    "spec": {"token": "redacted"},
                    "status": status
                })
                .to_string();
                let response = format!(
                    "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    (port, reviews)
}

/// A self-signed CA certificate (PEM), made with the venv's `cryptography`:
/// OpenBao insists on a cluster CA outside a pod, though it talks plain HTTP
/// to the loopback TokenReview endpoint here.
fn cluster_ca(dir: &std::path::Path) -> Option<std::path::PathBuf> {
    let python = keyroll_testkit::python::python_with(&["cryptography"])?;
    let path = dir.join("cluster-ca.pem");
    keyroll_testkit::python::run_python(
        &python,
        r#"
import datetime, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
key = ec.generate_private_key(ec.SECP256R1())
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
now = datetime.datetime.now(datetime.timezone.utc)
cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256()))
open(sys.argv[1], "wb").write(cert.public_bytes(serialization.Encoding.PEM))
"#,
        &[path.to_str().unwrap()],
    );
    Some(path)
}

/// Enables and configures the Kubernetes method, with role `app` bound to
/// `default/app` and allowed to read `secret/app`. `None` when the venv
/// cannot make the cluster CA (the test then skips, or fails under CI).
fn kubernetes_auth(bao: &OpenBao, api_port: u16, dir: &std::path::Path) -> Option<()> {
    let ca = cluster_ca(dir)?;
    bao.bao(&["auth", "enable", "kubernetes"]);
    bao.bao(&[
        "write",
        "auth/kubernetes/config",
        &format!("kubernetes_host=http://127.0.0.1:{api_port}"),
        &format!("kubernetes_ca_cert=@{}", ca.display()),
        "disable_local_ca_jwt=true",
    ]);
    read_only_policy(bao, "app-read", "app");
    bao.bao(&[
        "write",
        "auth/kubernetes/role/app",
        &format!("bound_service_account_names={ACCOUNT}"),
        &format!("bound_service_account_namespaces={NAMESPACE}"),
        "token_policies=app-read",
        "token_ttl=1h",
    ]);
    Some(())
}

#[tokio::test(flavor = "multi_thread")]
async fn kubernetes_login_with_the_service_account_token_reads_keys() {
    let Some(bao) = OpenBao::start() else { return };
    let key = strong_key();
    put(&bao, "app", &key);
    let jwt = service_account_jwt(ACCOUNT);
    let (api_port, reviews) = token_review_api(vec![(jwt.clone(), ACCOUNT)]).await;
    let dir = tempfile::tempdir().unwrap();
    let Some(()) = kubernetes_auth(&bao, api_port, dir.path()) else {
        return;
    };
    let jwt_file = dir.path().join("token");
    std::fs::write(&jwt_file, &jwt).unwrap();

    let uri = format!(
        "vault://127.0.0.1:{}/secret/app?tls=false&auth=kubernetes&role=app&jwt_file={}",
        bao.port(),
        jwt_file.display()
    );
    let provider = VaultProvider::from_uri(&uri).unwrap();
    let versions = provider
        .fetch()
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", bao.log()));
    assert_eq!(versions[0].material.expose_secret(), key.as_bytes());
    assert_eq!(reviews.load(Ordering::SeqCst), 1, "OpenBao reviewed the JWT once");
    assert_eq!(bao.requests_for("auth/kubernetes/login"), 1);
    assert!(!format!("{provider:?}").contains(&jwt));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_account_not_bound_to_the_role_is_permission_denied() {
    let Some(bao) = OpenBao::start() else { return };
    put(&bao, "app", &strong_key());
    // A genuine service account, but not the one the role is bound to.
    let other = service_account_jwt("other");
    let (api_port, reviews) = token_review_api(vec![(other.clone(), "other")]).await;
    let dir = tempfile::tempdir().unwrap();
    let Some(()) = kubernetes_auth(&bao, api_port, dir.path()) else {
        return;
    };
    let provider = builder(&bao, "app")
        .auth(Auth::kubernetes_with_jwt("app", Credential::value(other)))
        .build()
        .unwrap();
    let err = provider.fetch().await.unwrap_err();
    assert_eq!(
        reviews.load(Ordering::SeqCst),
        0,
        "refused by the role binding, before any review"
    );
    assert_eq!(err.kind(), ProviderErrorKind::PermissionDenied, "{err}");
    assert!(err.to_string().contains("Kubernetes login"), "{err}");
}
