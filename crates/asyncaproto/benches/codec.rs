//! Criterion benches of the payload codecs and the frame path.

fn main() {}
