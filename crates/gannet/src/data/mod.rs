//! Datasets and the background batch loader. (Implemented in the data work item.)
