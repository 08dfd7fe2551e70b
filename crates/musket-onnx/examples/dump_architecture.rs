//! Prints the architecture of an ONNX model as the JSON party 0 sends the other parties (the
//! graph without its weights): `cargo run --example dump_architecture -p musket-onnx -- M.onnx`.
//! Used to seed the architecture fuzz target and to see exactly what a model owner reveals.

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: dump_architecture MODEL.onnx");
        std::process::exit(2);
    };
    match musket_onnx::load(std::path::Path::new(&path)) {
        Ok(g) => println!("{}", serde_json::to_string_pretty(&g.without_weights()).expect("serialisable")),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
