//! The conformance suite every provider passes, against moto's server.

mod common;

use keyroll_testkit::conformance::{self, Capabilities};
use keyroll_testkit::moto::Moto;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_provider_passes_the_conformance_suite() {
    let Some(moto) = Moto::start() else { return };
    let store = common::MotoStore::new(moto, "conformance");
    let caps = Capabilities::new().shared().with_created_times();
    conformance::run::<keyroll_aws::AwsProvider>(&store, caps).await;
}
