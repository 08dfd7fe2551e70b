//! The parts of the `musket` binary that read untrusted files: .npy inputs and the cluster
//! file. They are a library so that tests and fuzz targets can call them directly.

pub mod config;
pub mod files;
pub mod npy;
