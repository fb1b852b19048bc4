//! Dense f64 linear algebra for the Frechet distance: tr sqrt(S1 S2) for covariance matrices.
//!
//! S1 S2 is not symmetric, but with S1 = L L^T its non-zero eigenvalues are those of the
//! symmetric PSD matrix L^T S2 L, so tr sqrt(S1 S2) = sum_i sqrt(eig_i(L^T S2 L)). L comes from
//! a pivoted Cholesky that stops at the numerical rank: covariances of fewer samples than
//! dimensions are singular, which a plain Cholesky (or scipy's sqrtm) handles badly. Only
//! eigenvalues are needed: Householder tridiagonalisation, then implicit QR with Wilkinson shifts.

use candle_core::{Device, Tensor};
use rayon::prelude::*;

/// Row-major square matrix product via candle's f64 gemm (CPU).
fn matmul(a: &[f64], (m, k): (usize, usize), b: &[f64], n: usize) -> crate::Result<Vec<f64>> {
    let a = Tensor::from_slice(a, (m, k), &Device::Cpu)?;
    let b = Tensor::from_slice(b, (k, n), &Device::Cpu)?;
    Ok(a.matmul(&b)?.flatten_all()?.to_vec1::<f64>()?)
}

/// Pivoted Cholesky of a symmetric PSD `s` (d x d): returns L (d x r, row-major) with
/// S ~= L L^T, stopping when the largest remaining diagonal is below `rel_tol * max diag`.
pub fn pivoted_cholesky(s: &[f64], d: usize, rel_tol: f64) -> (Vec<f64>, usize) {
    let mut diag: Vec<f64> = (0..d).map(|i| s[i * d + i]).collect();
    let max0 = diag.iter().cloned().fold(0.0, f64::max);
    // Columns of L stored as rows of `cols` (r x d) while building; transposed at the end.
    let mut cols: Vec<Vec<f64>> = Vec::new();
    let mut used = vec![false; d];
    while cols.len() < d {
        let (p, &dp) = diag.iter().enumerate().filter(|(i, _)| !used[*i]).max_by(|a, b| a.1.total_cmp(b.1)).unwrap();
        // Not greater also when either side is NaN: a NaN pivot ends the factorisation.
        if dp.partial_cmp(&(rel_tol * max0)) != Some(std::cmp::Ordering::Greater) || dp <= 0.0 {
            break;
        }
        used[p] = true;
        let root = dp.sqrt();
        let mut col: Vec<f64> = (0..d)
            .into_par_iter()
            .map(|i| {
                if used[i] && i != p {
                    return 0.0;
                }
                let dot: f64 = cols.iter().map(|c| c[i] * c[p]).sum();
                (s[i * d + p] - dot) / root
            })
            .collect();
        col[p] = root;
        for i in 0..d {
            if !used[i] {
                diag[i] -= col[i] * col[i];
            }
        }
        diag[p] = 0.0;
        cols.push(col);
    }
    let r = cols.len();
    let mut l = vec![0.0; d * r];
    for (j, c) in cols.iter().enumerate() {
        for i in 0..d {
            l[i * r + j] = c[i];
        }
    }
    (l, r)
}

/// Eigenvalues of a symmetric matrix (row-major n x n; only symmetry is assumed, not checked).
pub fn symmetric_eigenvalues(a: &[f64], n: usize) -> Vec<f64> {
    let (mut d, mut e) = tridiagonalize(a.to_vec(), n);
    tridiagonal_eigenvalues(&mut d, &mut e);
    d
}

/// Householder reduction to tridiagonal form: returns (diagonal, sub-diagonal).
fn tridiagonalize(mut a: Vec<f64>, n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut e = vec![0.0; n.saturating_sub(1)];
    for k in 0..n.saturating_sub(2) {
        let m = n - k - 1; // size of the trailing block A22 (rows/cols k+1..n)
        let mut v: Vec<f64> = (k + 1..n).map(|i| a[i * n + k]).collect();
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm == 0.0 {
            e[k] = 0.0;
            continue;
        }
        let alpha = if v[0] > 0.0 { -norm } else { norm };
        v[0] -= alpha;
        let vn = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        v.iter_mut().for_each(|x| *x /= vn);
        e[k] = alpha;
        // H A22 H with H = I - 2 v v^T equals A22 - 2 (v q^T + q v^T), q = p - (v.p) v, p = A22 v.
        let off = k + 1;
        let p: Vec<f64> = (0..m)
            .into_par_iter()
            .map(|i| {
                let row = &a[(off + i) * n + off..(off + i) * n + n];
                row.iter().zip(&v).map(|(x, y)| x * y).sum()
            })
            .collect();
        let kk: f64 = v.iter().zip(&p).map(|(x, y)| x * y).sum();
        let q: Vec<f64> = p.iter().zip(&v).map(|(pi, vi)| pi - kk * vi).collect();
        a[off * n..].par_chunks_mut(n).take(m).enumerate().for_each(|(i, row)| {
            let (vi, qi) = (v[i], q[i]);
            for (j, x) in row[off..].iter_mut().enumerate() {
                *x -= 2.0 * (vi * q[j] + qi * v[j]);
            }
        });
    }
    if n >= 2 {
        e[n - 2] = a[(n - 1) * n + n - 2];
    }
    let d = (0..n).map(|i| a[i * n + i]).collect();
    (d, e)
}

/// Implicit symmetric QR with Wilkinson shifts on (d, e); eigenvalues are left in `d`.
fn tridiagonal_eigenvalues(d: &mut [f64], e: &mut [f64]) {
    let n = d.len();
    if n < 2 {
        return;
    }
    let mut hi = n - 1;
    let mut iters = 0usize;
    while hi > 0 {
        for i in 0..hi {
            if e[i].abs() <= f64::EPSILON * (d[i].abs() + d[i + 1].abs()) || e[i].abs() < f64::MIN_POSITIVE {
                e[i] = 0.0;
            }
        }
        if e[hi - 1] == 0.0 {
            hi -= 1;
            continue;
        }
        let mut lo = hi - 1;
        while lo > 0 && e[lo - 1] != 0.0 {
            lo -= 1;
        }
        qr_step(d, e, lo, hi);
        iters += 1;
        if iters > 100 * n {
            break; // does not happen for finite input; guards against NaN loops
        }
    }
}

/// One implicit QR step with Wilkinson shift on the unreduced block lo..=hi (bulge chasing).
fn qr_step(d: &mut [f64], e: &mut [f64], lo: usize, hi: usize) {
    let dd = (d[hi - 1] - d[hi]) / 2.0;
    let eh = e[hi - 1];
    let sign = if dd >= 0.0 { 1.0 } else { -1.0 };
    let mu = d[hi] - eh * eh / (dd + sign * dd.hypot(eh));
    let (mut x, mut z) = (d[lo] - mu, e[lo]);
    for k in lo..hi {
        let r = x.hypot(z);
        let (c, s) = if r == 0.0 { (1.0, 0.0) } else { (x / r, z / r) };
        if k > lo {
            e[k - 1] = r;
        }
        let (a, b, cc) = (d[k], e[k], d[k + 1]);
        d[k] = c * c * a + 2.0 * c * s * b + s * s * cc;
        d[k + 1] = s * s * a - 2.0 * c * s * b + c * c * cc;
        e[k] = c * s * (cc - a) + (c * c - s * s) * b;
        if k + 1 < hi {
            x = e[k];
            z = s * e[k + 1];
            e[k + 1] *= c;
        }
    }
}

/// tr sqrt(S1 S2) for symmetric PSD S1, S2 (d x d, row-major); tiny negative eigenvalues
/// (round-off) count as 0.
pub fn trace_sqrt_product(s1: &[f64], s2: &[f64], d: usize) -> crate::Result<f64> {
    let (l, r) = pivoted_cholesky(s1, d, 1e-13);
    if r == 0 {
        return Ok(0.0);
    }
    let lt: Vec<f64> = (0..r * d).map(|idx| l[(idx % d) * r + idx / d]).collect();
    let m = matmul(&matmul(&lt, (r, d), s2, d)?, (r, d), &l, r)?;
    // Symmetrise away round-off before the symmetric solver.
    let m: Vec<f64> = (0..r * r).map(|idx| 0.5 * (m[idx] + m[(idx % r) * r + idx / r])).collect();
    Ok(symmetric_eigenvalues(&m, r).iter().map(|&x| x.max(0.0).sqrt()).sum())
}
