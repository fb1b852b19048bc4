//! Optimisers with saveable state. (Implemented in the optimiser work item.)
