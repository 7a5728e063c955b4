//! The `kbus` command-line tool. Its commands arrive with the client; for now it reports its version.

fn main() {
    let arg = std::env::args().nth(1);
    match arg.as_deref() {
        Some("--version") | Some("-V") => println!("kbus {}", env!("CARGO_PKG_VERSION")),
        _ => {
            eprintln!(
                "kbus {}: no commands yet (the client is still being built)",
                env!("CARGO_PKG_VERSION")
            );
            std::process::exit(2);
        }
    }
}
