//! Serves the example service over HTTP: `cargo run -p idstore-example-service --
//! ROOT [ADDRESS]` keeps each user's file in `ROOT/{user}.sqlite` and listens on
//! ADDRESS (`127.0.0.1:8080`). Try `curl localhost:8080/users/ada/settings`.

use idstore_example_service::{Service, serve};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let root = args.next().unwrap_or_else(|| ".".to_owned());
    let address = args.next().unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let runtime = tokio::runtime::Runtime::new()?;
    let listener = std::net::TcpListener::bind(&address)?;
    eprintln!("serving users' files in {root} on http://{address}");
    serve(&listener, &Service::new(root), runtime.handle());
    Ok(())
}
