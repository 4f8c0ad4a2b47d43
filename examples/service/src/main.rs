//! Runs the example service's requests once on a database file:
//! `cargo run -p idstore-example-service -- PATH`.

use idstore_example_service::Service;

#[tokio::main]
async fn main() -> Result<(), idstore_repo::Error> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "service.sqlite".to_owned());
    let service = Service::open(std::path::Path::new(&path)).await?;
    println!(
        "{:?}",
        service.patch_settings(r#"{"firstName": "Ada"}"#).await
    );
    println!("{:?}", service.settings().await);
    Ok(())
}
