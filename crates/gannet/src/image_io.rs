//! Writing tensors as PNG images and grids.
