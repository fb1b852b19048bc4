//! Generators and discriminators.
