//! The parts of the `musket` binary that other front ends and tests use directly: the readers
//! of untrusted files (.npy inputs, the cluster file) and the orchestration of private inference
//! and training.

pub mod agreement;
pub mod config;
pub mod files;
pub mod inference;
pub mod npy;
pub mod training;
pub mod yao;
