//! Atomic, verified checkpoints. (Implemented in the checkpoint work item.)
