"""Small synthetic files in the formats of the MAF data release, built so that every
preprocessing step changes the result (see each writer's docstring)."""

import numpy as np

HEPMASS_FEATURES = 6
# f1's minimum occurs 8 times among the signal rows (dropped), f2's exactly 5 times (kept),
# f3's maximum 20 times with a unique minimum (kept), f4's repeated minimum only in
# background rows (kept, because labels are filtered first).
HEPMASS_DROPPED = (1,)


def write_power(root, n=240, seed=0):
    """``root/power/data.npy``: 8 columns of different offsets and scales, so a wrong column
    deletion, noise column or standardisation shows."""
    rng = np.random.default_rng(seed)
    raw = rng.normal(size=(n, 8)) * np.arange(1, 9) + 10.0 * np.arange(8)
    raw[:, 4:7] = rng.integers(0, 30, size=(n, 3))  # sub-meterings are integer-valued
    (root / "power").mkdir(parents=True, exist_ok=True)
    np.save(root / "power" / "data.npy", raw)
    return raw


def gas_frame_columns(n=400, seed=0):
    """Columns (name, values) of a GAS-like table with exact sample correlations.

    From orthonormal centred directions q_i: A = q0, C = 0.965 q0 + sqrt(1 - 0.965^2) q1 and
    B = (A + C)/2 give corr(A, B) = corr(B, C) = sqrt(0.9825) > 0.98 > corr(A, C) = 0.965,
    a chain the loop resolves by dropping A, then B. E = 0.9995 D + ..., so D is dropped.
    Meth follows C (corr 0.995) and sits after it: were it not dropped first, C would go.
    Expected survivors: C, E, F, G.
    """
    rng = np.random.default_rng(seed)
    m = rng.normal(size=(n, 9))
    q, _ = np.linalg.qr(m - m.mean(axis=0))
    a = q[:, 0]
    c = 0.965 * q[:, 0] + np.sqrt(1 - 0.965**2) * q[:, 1]
    b = (a + c) / 2
    meth = 0.995 * c / np.linalg.norm(c) + np.sqrt(1 - 0.995**2) * q[:, 2]
    d = q[:, 3]
    e = 0.9995 * q[:, 3] + np.sqrt(1 - 0.9995**2) * q[:, 4]
    columns = [("Time", np.arange(n, dtype=float)), ("A", a), ("B", b), ("C", c),
               ("Meth", meth), ("Eth", q[:, 5]), ("D", d), ("E", e), ("F", q[:, 6]),
               ("G", q[:, 7])]
    # different offsets and scales per column: correlations are unchanged
    return [(name, 3.0 * (i + 1) * v + i) for i, (name, v) in enumerate(columns)]


def _write_csv(path, header, table):
    with open(path, "w") as f:
        f.write(",".join(header) + "\n")
        f.writelines(",".join(f"{v:.17g}" for v in row) + "\n" for row in table)


def write_hepmass(root, seed=0):
    """``root/hepmass/1000_train.csv`` and ``1000_test.csv`` (with its extra last column),
    label first; see HEPMASS_DROPPED for the repeated-value design. Returns the tables."""
    rng = np.random.default_rng(seed)
    n_train, n_test = 200, 80
    label = np.zeros(n_train)
    label[rng.permutation(n_train)[:130]] = 1.0
    signal = np.flatnonzero(label == 1)
    background = np.flatnonzero(label == 0)
    x = rng.normal(size=(n_train, HEPMASS_FEATURES))
    x[:, 1] = rng.integers(1, 4, size=n_train)
    x[signal[:8], 1] = 0.0
    x[background, 1] = 2.0
    x[:, 2] = rng.normal(size=n_train) + 10.0
    x[signal[:5], 2] = 0.0
    x[:, 3] = np.minimum(rng.normal(size=n_train), 1.0)
    x[signal[:20], 3] = 1.0
    x[background[:10], 4] = -10.0
    train = np.column_stack([label, x])
    test_label = (rng.random(n_test) < 0.5).astype(float)
    test_x = rng.normal(size=(n_test, HEPMASS_FEATURES)) * 1.5 + 0.3
    test = np.column_stack([test_label, test_x, np.full(n_test, 1000.0)])
    names = [f"f{i}" for i in range(HEPMASS_FEATURES)]
    (root / "hepmass").mkdir(parents=True, exist_ok=True)
    _write_csv(root / "hepmass" / "1000_train.csv", ["# label", *names], train)
    _write_csv(root / "hepmass" / "1000_test.csv", ["# label", *names, "mass"], test)
    return train, test


def write_miniboone(root, n=150, seed=0):
    rng = np.random.default_rng(seed)
    data = rng.normal(size=(n, 5)) * np.arange(1, 6) + np.arange(5)
    (root / "miniboone").mkdir(parents=True, exist_ok=True)
    np.save(root / "miniboone" / "data.npy", data)
    return data
