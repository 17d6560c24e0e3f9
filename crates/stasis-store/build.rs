//! `sqlx::migrate!()` embeds migrations/ at compile time; without this, a changed or added
//! migration alone would not rebuild the crate and the binary would carry the old schema.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
