//! Adversarial losses. (Implemented in the losses work item.)
