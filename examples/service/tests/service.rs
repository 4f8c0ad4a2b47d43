//! The example service against idstore's test helper.

use idstore_example_service::Service;
use idstore_repo::testing::{ALICE, BOB, TestDatabase};

#[tokio::test]
async fn the_service_answers_by_kind() {
    let test = TestDatabase::seeded().unwrap();
    let service = Service::open(test.path()).await.unwrap();

    let (status, body) = service.settings().await;
    assert_eq!(status, 200);
    assert_eq!(body["activeDid"], ALICE);
    assert_eq!(body["settings"]["firstName"], "Test");

    assert_eq!(
        service
            .patch_settings(r#"{"firstName": "Ada", "lastName": null}"#)
            .await
            .0,
        200
    );
    assert_eq!(service.settings().await.1["settings"]["firstName"], "Ada");
    let (status, body) = service.patch_settings(r#"{"isRegistered": "maybe"}"#).await;
    assert_eq!(status, 400, "{body}");

    assert_eq!(service.set_active(BOB).await.0, 200);
    assert_eq!(service.settings().await.1["activeDid"], BOB);
    let (status, body) = service
        .set_active("did:ethr:0x00000000000000000000000000000000DeadBeef")
        .await;
    assert_eq!(
        (status, body["error"]["kind"].as_str()),
        (404, Some("unknown_account"))
    );
    assert_eq!(service.set_active("nonsense").await.0, 400);
}
