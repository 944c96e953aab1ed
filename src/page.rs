//! [`MetricsPage`]: key usage read over HTTP from a metrics page.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use keyroll_core::metrics_page::{MAX_PAGE, UsageSource, verifications_per_key};

/// How long one read of a metrics page may take.
pub const SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);

/// A metrics page in Prometheus' text format, read over plain HTTP: a
/// service's own `/metrics` (the `metrics` feature), or a Prometheus
/// `/federate?match[]=keyroll_verifications_total` page that gathers the
/// whole fleet's. What `keyroll watch --metrics` reads, and what keeps a key
/// still in use from being retired
/// ([`RefresherBuilder::retire_unless_used`](crate::RefresherBuilder::retire_unless_used)).
///
/// Messages and `Debug` show the URL with its user info replaced by `***`.
#[derive(Clone)]
pub struct MetricsPage {
    url: hyper::Uri,
    shown: String,
    client: Client<HttpConnector, Empty<Bytes>>,
}

/// Why a metrics page URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsPageError {
    /// Not a URL at all.
    #[error("{shown:?} is not a URL: {problem}")]
    NotAUrl {
        /// The URL, user info redacted.
        shown: String,
        /// What is wrong.
        problem: String,
    },
    /// Not `http://HOST…`.
    #[error("{shown:?}: give the metrics page as http://HOST:PORT/PATH")]
    NotHttp {
        /// The URL, user info redacted.
        shown: String,
    },
}

impl MetricsPage {
    /// The page at `url`, a plain `http://` URL.
    ///
    /// # Errors
    /// [`MetricsPageError`] for anything else.
    pub fn new(url: &str) -> Result<Self, MetricsPageError> {
        let shown = keyroll_core::remote::redact_userinfo(url).into_owned();
        let uri: hyper::Uri =
            url.parse()
                .map_err(|e: hyper::http::uri::InvalidUri| MetricsPageError::NotAUrl {
                    shown: shown.clone(),
                    problem: e.to_string(),
                })?;
        if uri.scheme_str() != Some("http") || uri.host().is_none() {
            return Err(MetricsPageError::NotHttp { shown });
        }
        Ok(Self {
            url: uri,
            shown,
            client: Client::builder(TokioExecutor::new()).build_http(),
        })
    }

    /// The URL as messages show it: user info replaced by `***`.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// The page's text: at most [`MAX_PAGE`] bytes of UTF-8, within
    /// [`SCRAPE_TIMEOUT`].
    ///
    /// # Errors
    /// Why it could not be read, naming the page (redacted).
    pub async fn read(&self) -> Result<String, String> {
        let shown = &self.shown;
        let read = async {
            let response = self
                .client
                .get(self.url.clone())
                .await
                .map_err(|e| format!("cannot read {shown}: {e}"))?;
            if !response.status().is_success() {
                return Err(format!("{shown} answered {}", response.status()));
            }
            let body = Limited::new(response.into_body(), MAX_PAGE)
                .collect()
                .await
                .map_err(|e| format!("cannot read {shown}: {e}"))?
                .to_bytes();
            String::from_utf8(body.to_vec()).map_err(|_| format!("{shown} answered a page that is not UTF-8"))
        };
        tokio::time::timeout(SCRAPE_TIMEOUT, read)
            .await
            .map_err(|_| format!("{shown} did not answer within {SCRAPE_TIMEOUT:?}"))?
    }
}

impl fmt::Debug for MetricsPage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsPage").field("url", &self.shown).finish()
    }
}

#[keyroll_core::async_trait]
impl UsageSource for MetricsPage {
    async fn verifications(&self, known: &[String]) -> Result<BTreeMap<String, u64>, String> {
        let page = self.read().await?;
        let known: HashSet<&str> = known.iter().map(String::as_str).collect();
        Ok(verifications_per_key(&page, &known))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_never_show_the_urls_user_info() {
        for url in [
            "https://user:pa55word@host/metrics",
            "http://user:pa55word@/metrics",
        ] {
            let message = MetricsPage::new(url).expect_err("refused").to_string();
            assert!(!message.contains("pa55word"), "{message}");
            assert!(message.contains("***@"), "{message}");
        }
        let page = MetricsPage::new("http://user:pa55word@127.0.0.1:9/metrics").unwrap();
        assert_eq!(page.shown(), "http://***@127.0.0.1:9/metrics");
        assert!(!format!("{page:?}").contains("pa55word"), "{page:?}");
    }

    #[test]
    fn only_plain_http_pages_are_taken() {
        assert!(MetricsPage::new("http://127.0.0.1:9185/metrics").is_ok());
        for url in [
            "https://host/metrics",
            "127.0.0.1:9185",
            "not a url",
            "file:///metrics",
        ] {
            assert!(MetricsPage::new(url).is_err(), "{url}");
        }
    }
}
