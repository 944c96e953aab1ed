//! The server against the REST reference's documented requests and
//! responses, spoken to with a plain HTTP client.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::*;

const SECRET: &str = "projects/project-id/secrets/secret-id";

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    fn new(server: &SecretManagerServer) -> Self {
        crate::install_crypto_provider();
        Self {
            http: reqwest::Client::new(),
            base: server.endpoint(),
        }
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .patch(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }
}

/// The quickstart: create a secret, add a version, access it.
async fn quickstart(server: &SecretManagerServer) -> Client {
    let client = Client::new(server);
    let (status, _) = client
        .post(
            "/v1/projects/project-id/secrets?secretId=secret-id",
            json!({ "replication": { "automatic": {} } }),
        )
        .await;
    assert_eq!(status, 200);
    let data = STANDARD.encode("my super secret data");
    let (status, _) = client
        .post(
            &format!("/v1/{SECRET}:addVersion"),
            json!({ "payload": { "data": data } }),
        )
        .await;
    assert_eq!(status, 200);
    client
}

fn assert_error(reply: &(u16, Value), http: u16, status: &str) {
    assert_eq!(reply.0, http, "{reply:?}");
    let error = &reply.1["error"];
    assert_eq!(error["code"], http, "{reply:?}");
    assert_eq!(error["status"], status, "{reply:?}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{reply:?}"
    );
}

#[tokio::test]
async fn create_returns_the_secret_with_its_name_replication_and_create_time() {
    let server = SecretManagerServer::start().await;
    let client = Client::new(&server);
    let (status, secret) = client
        .post(
            "/v1/projects/project-id/secrets?secretId=secret-id",
            json!({ "replication": { "automatic": {} } }),
        )
        .await;
    assert_eq!(status, 200, "{secret}");
    assert_eq!(secret["name"], SECRET);
    assert_eq!(secret["replication"], json!({ "automatic": {} }));
    OffsetDateTime::parse(secret["createTime"].as_str().unwrap(), &Rfc3339).unwrap();
    assert_eq!(
        client.get(&format!("/v1/{SECRET}")).await.1,
        secret,
        "get returns the same secret"
    );

    let again = client
        .post("/v1/projects/project-id/secrets?secretId=secret-id", json!({}))
        .await;
    assert_error(&again, 409, "ALREADY_EXISTS");
    let bad_id = client
        .post("/v1/projects/project-id/secrets?secretId=a.b", json!({}))
        .await;
    assert_error(&bad_id, 400, "INVALID_ARGUMENT");
}

#[tokio::test]
async fn add_version_then_access_returns_the_payload_with_its_crc32c_as_an_int64_string() {
    let server = SecretManagerServer::start().await;
    let client = quickstart(&server).await;
    let (status, access) = client.get(&format!("/v1/{SECRET}/versions/1:access")).await;
    assert_eq!(status, 200, "{access}");
    assert_eq!(access["name"], format!("{SECRET}/versions/1"));
    assert_eq!(access["payload"]["data"], "bXkgc3VwZXIgc2VjcmV0IGRhdGE=");
    let crc = crc32c::crc32c(b"my super secret data");
    assert_eq!(access["payload"]["dataCrc32c"], crc.to_string());

    client
        .post(
            &format!("/v1/{SECRET}:addVersion"),
            json!({ "payload": { "data": STANDARD.encode("second") } }),
        )
        .await;
    let (_, latest) = client.get(&format!("/v1/{SECRET}/versions/latest:access")).await;
    assert_eq!(
        latest["name"],
        format!("{SECRET}/versions/2"),
        "latest is the newest version, named by number"
    );
    assert_eq!(latest["payload"]["data"], STANDARD.encode("second"));
}

#[tokio::test]
async fn add_version_verifies_a_given_checksum() {
    let server = SecretManagerServer::start().await;
    let client = quickstart(&server).await;
    let path = format!("/v1/{SECRET}:addVersion");
    let add = |crc: Value| {
        client.post(
            &path,
            json!({ "payload": { "data": STANDARD.encode("123456789"), "dataCrc32c": crc } }),
        )
    };
    // CRC-32C check value of "123456789": 0xE3069283.
    let (status, version) = add(json!("3808858755")).await;
    assert_eq!(status, 200, "{version}");
    assert_eq!(version["clientSpecifiedPayloadChecksum"], true);
    assert_eq!(
        add(json!(3808858755_u32)).await.0,
        200,
        "an int64 may also come as a number"
    );
    assert_error(&add(json!("3808858756")).await, 400, "INVALID_ARGUMENT");
    let (_, list) = client.get(&format!("/v1/{SECRET}/versions")).await;
    assert_eq!(list["totalSize"], 3, "the refused version was not added: {list}");
}

#[tokio::test]
async fn enums_are_names_by_default_and_integers_when_the_client_asks() {
    let server = SecretManagerServer::start().await;
    let client = quickstart(&server).await;
    let (_, named) = client.get(&format!("/v1/{SECRET}/versions/1")).await;
    assert_eq!(named["state"], "ENABLED");
    let (_, numbered) = client
        .get(&format!(
            "/v1/{SECRET}/versions/1?%24alt=json%3Benum-encoding%3Dint"
        ))
        .await;
    assert_eq!(numbered["state"], 1);
    let (_, disabled) = client
        .post(
            &format!("/v1/{SECRET}/versions/1:disable?$alt=json;enum-encoding=int"),
            json!({}),
        )
        .await;
    assert_eq!(disabled["state"], 2);
    let (_, destroyed) = client
        .post(
            &format!("/v1/{SECRET}/versions/1:destroy?$alt=json;enum-encoding=int"),
            json!({}),
        )
        .await;
    assert_eq!(destroyed["state"], 3);
}

#[tokio::test]
async fn list_is_newest_first_and_pages_with_next_page_token_and_total_size() {
    let server = SecretManagerServer::start().await;
    let client = quickstart(&server).await;
    for n in 2..=5 {
        server.add_version(SECRET, format!("v{n}").as_bytes());
    }
    let mut names = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let (status, page) = client
            .get(&format!("/v1/{SECRET}/versions?pageSize=2&pageToken={token}"))
            .await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["totalSize"], 5);
        pages += 1;
        for version in page["versions"].as_array().unwrap() {
            names.push(
                version["name"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_owned(),
            );
        }
        match page.get("nextPageToken").and_then(Value::as_str) {
            Some(next) => token = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(names, ["5", "4", "3", "2", "1"]);
    assert_eq!(pages, 3);
    let bad = client
        .get(&format!("/v1/{SECRET}/versions?pageToken=bogus"))
        .await;
    assert_error(&bad, 400, "INVALID_ARGUMENT");

    server.set_state(&format!("{SECRET}/versions/2"), VersionState::Disabled);
    let (_, disabled) = client
        .get(&format!("/v1/{SECRET}/versions?filter=state:DISABLED"))
        .await;
    assert_eq!(disabled["versions"].as_array().unwrap().len(), 1);
    assert_eq!(disabled["versions"][0]["name"], format!("{SECRET}/versions/2"));
}

#[tokio::test]
async fn a_disabled_version_cannot_be_accessed_until_enabled_and_a_destroyed_one_never() {
    let server = SecretManagerServer::start().await;
    let client = quickstart(&server).await;
    let version = format!("/v1/{SECRET}/versions/1");
    let (status, disabled) = client.post(&format!("{version}:disable"), json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(disabled["state"], "DISABLED");
    assert_error(
        &client.get(&format!("{version}:access")).await,
        400,
        "FAILED_PRECONDITION",
    );

    let (_, enabled) = client.post(&format!("{version}:enable"), json!({})).await;
    assert_eq!(enabled["state"], "ENABLED");
    assert_eq!(client.get(&format!("{version}:access")).await.0, 200);

    let stale = client
        .post(&format!("{version}:disable"), json!({ "etag": disabled["etag"] }))
        .await;
    assert_error(&stale, 400, "FAILED_PRECONDITION");

    let (_, destroyed) = client.post(&format!("{version}:destroy"), json!({})).await;
    assert_eq!(destroyed["state"], "DESTROYED");
    OffsetDateTime::parse(destroyed["destroyTime"].as_str().unwrap(), &Rfc3339).unwrap();
    assert_error(
        &client.get(&format!("{version}:access")).await,
        400,
        "FAILED_PRECONDITION",
    );
    assert_error(
        &client.post(&format!("{version}:enable"), json!({})).await,
        400,
        "FAILED_PRECONDITION",
    );
}

#[tokio::test]
async fn errors_carry_code_message_and_canonical_status() {
    let server = SecretManagerServer::start().await;
    let client = quickstart(&server).await;
    assert_error(
        &client.get("/v1/projects/project-id/secrets/nope").await,
        404,
        "NOT_FOUND",
    );
    assert_error(
        &client.get(&format!("/v1/{SECRET}/versions/7:access")).await,
        404,
        "NOT_FOUND",
    );
    assert_error(
        &client.get(&format!("/v1/{SECRET}/versions/one")).await,
        400,
        "INVALID_ARGUMENT",
    );
    server.deny("secretmanager.versions.access", SECRET);
    let denied = client.get(&format!("/v1/{SECRET}/versions/1:access")).await;
    assert_error(&denied, 403, "PERMISSION_DENIED");
    assert_eq!(
        client.get(&format!("/v1/{SECRET}/versions/1")).await.0,
        200,
        "only the denied permission is refused"
    );
    server.set_unavailable(true);
    assert_error(&client.get(&format!("/v1/{SECRET}")).await, 503, "UNAVAILABLE");
}

#[tokio::test]
async fn regional_secrets_live_under_locations_without_replication() {
    let server = SecretManagerServer::start().await;
    let client = Client::new(&server);
    let (status, secret) = client
        .post(
            "/v1/projects/project-id/locations/us-central1/secrets?secretId=secret-id",
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{secret}");
    assert_eq!(
        secret["name"],
        "projects/project-id/locations/us-central1/secrets/secret-id"
    );
    assert!(secret.get("replication").is_none());
    let (_, version) = client
        .post(
            "/v1/projects/project-id/locations/us-central1/secrets/secret-id:addVersion",
            json!({ "payload": { "data": STANDARD.encode("regional") } }),
        )
        .await;
    assert_eq!(
        version["name"],
        "projects/project-id/locations/us-central1/secrets/secret-id/versions/1"
    );
    let replicated = client
        .post(
            "/v1/projects/project-id/locations/us-central1/secrets?secretId=other",
            json!({ "replication": { "automatic": {} } }),
        )
        .await;
    assert_error(&replicated, 400, "INVALID_ARGUMENT");
}

#[tokio::test]
async fn a_restarted_server_keeps_its_secrets_on_the_same_port() {
    let server = SecretManagerServer::start().await;
    let client = quickstart(&server).await;
    server.stop().await;
    assert!(!server.is_running());
    assert!(
        tokio::net::TcpStream::connect(server.addr()).await.is_err(),
        "a stopped server refuses connections"
    );
    server.restart().await;
    let (status, access) = client.get(&format!("/v1/{SECRET}/versions/latest:access")).await;
    assert_eq!(status, 200, "{access}");
    assert_eq!(access["payload"]["data"], "bXkgc3VwZXIgc2VjcmV0IGRhdGE=");
}

#[tokio::test]
async fn patch_replaces_annotations_under_the_current_etag_only() {
    let server = SecretManagerServer::start().await;
    let client = Client::new(&server);
    let (status, created) = client
        .post(
            "/v1/projects/project-id/secrets?secretId=secret-id",
            json!({ "replication": { "automatic": {} }, "annotations": { "owner": "team-a" } }),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["annotations"], json!({ "owner": "team-a" }));
    let path = format!("/v1/{SECRET}?updateMask=annotations");

    let (status, patched) = client
        .patch(
            &path,
            json!({ "etag": created["etag"], "annotations": { "claim": "1" } }),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["annotations"], json!({ "claim": "1" }));
    assert_ne!(patched["etag"], created["etag"], "every update changes the etag");
    assert_eq!(client.get(&format!("/v1/{SECRET}")).await.1, patched);
    assert_eq!(server.annotations(SECRET)["claim"], "1");

    // A writer that read the secret before that update is refused.
    let stale = client
        .patch(&path, json!({ "etag": created["etag"], "annotations": {} }))
        .await;
    assert_error(&stale, 400, "FAILED_PRECONDITION");
    // Without an etag the update is unconditional.
    let (status, cleared) = client.patch(&path, json!({ "annotations": {} })).await;
    assert_eq!(status, 200, "{cleared}");
    assert!(cleared.get("annotations").is_none(), "{cleared}");
    // Adding a version is no update of the secret.
    server.add_version(SECRET, b"data");
    assert_eq!(
        client.get(&format!("/v1/{SECRET}")).await.1["etag"],
        cleared["etag"]
    );

    for (query, body) in [
        ("", json!({ "annotations": {} })),
        ("?updateMask=labels", json!({ "labels": {} })),
        (
            "?updateMask=annotations",
            json!({ "annotations": { "-bad": "x" } }),
        ),
    ] {
        let refused = client.patch(&format!("/v1/{SECRET}{query}"), body).await;
        assert_error(&refused, 400, "INVALID_ARGUMENT");
    }
    server.deny("secretmanager.secrets.update", SECRET);
    assert_error(&client.patch(&path, json!({})).await, 403, "PERMISSION_DENIED");
}
