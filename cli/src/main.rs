//! `lightpod`: the operator command.

fn main() {}
