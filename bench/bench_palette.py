"""How well the group palette's colours are told apart, with normal vision and with simulated colour-vision deficiencies.

For the first k colours (k = 2 … 8: the base set) and for the colour-named pairs (red/green, blue/yellow), the smallest
CIELAB distance (ΔE*ab, 1976) between any two of them: as seen, and as simulated for deuteranopia, protanopia and
tritanopia (Machado, Oliveira & Fernandes 2009, severity 1.0, applied in linear RGB). About 10 or more: told apart side
by side; under 5: easily confused. Also each base colour's contrast ratio (WCAG) against the light theme's white and the
dark theme's background. Seconds; prints a table (docs/PALETTE.md keeps its output).

    python -m bench.bench_palette
"""
from __future__ import annotations

import itertools

import numpy as np

from dashboard_lib.plots import GROUP_BASE, NAMED_GROUP_COLOURS, group_colours

MACHADO = {  # linear-RGB simulation matrices, severity 1.0
    "deuteranopia": [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]],
    "protanopia": [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]],
    "tritanopia": [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602], [0.004733, 0.691367, 0.303900]],
}
DARK_BACKGROUND = "#0e1117"  # Streamlit's dark theme


def _linear(colour: str) -> np.ndarray:
    c = np.array([int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _lab(linear: np.ndarray) -> np.ndarray:
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ np.clip(linear, 0, 1)
    t = xyz / np.array([0.9505, 1.0, 1.089])
    f = np.where(t > 0.008856, np.cbrt(t), 7.787 * t + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def delta_e(a: str, b: str, deficiency: str | None = None) -> float:
    la, lb = _linear(a), _linear(b)
    if deficiency:
        m = np.array(MACHADO[deficiency])
        la, lb = m @ la, m @ lb
    return float(np.linalg.norm(_lab(la) - _lab(lb)))


def contrast(a: str, b: str) -> float:
    la, lb = (float(_linear(c) @ [0.2126, 0.7152, 0.0722]) for c in (a, b))
    return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)


def smallest(colours: list[str], deficiency: str | None) -> float:
    return min(delta_e(a, b, deficiency) for a, b in itertools.combinations(colours, 2))


def main() -> None:
    kinds = [None, *MACHADO]
    print("colours                         " + "".join(f"{k or 'normal':>14}" for k in kinds))
    rows = [(f"first {k} of the palette", list(GROUP_BASE[:k])) for k in range(2, len(GROUP_BASE) + 1)]
    rows += [(f"groups {' / '.join(names)}", group_colours(names)) for names in (["red", "green"], ["blue", "yellow"])]
    for label, colours in rows:
        print(f"{label:<32}" + "".join(f"{smallest(colours, k):>14.1f}" for k in kinds))
    print("\nbase colour   contrast on white   on the dark theme")
    for colour in GROUP_BASE:
        print(f"{colour}       {contrast(colour, '#ffffff'):>8.2f}          {contrast(colour, DARK_BACKGROUND):>8.2f}")
    print(f"\nnamed colours: {NAMED_GROUP_COLOURS}")


if __name__ == "__main__":
    main()
