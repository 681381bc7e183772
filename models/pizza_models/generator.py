"""Procedural pizza images for the six classes (numpy + PIL only, deterministic per seed).

Every image is drawn in a "pie frame" (unit radius, rotated, slightly squashed for perspective),
then lit, blurred and noised. What each class looks like is written down in docs/pizza-classes.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter
from pizza_inference import CLASSES

RENDER_SIZE = 96
"""Images are drawn at this size; each model downscales to its own input size."""

Array = np.ndarray
RGB = tuple[float, float, float]

CRUST_RAW: RGB = (0.93, 0.85, 0.66)
CRUST_BAKED: RGB = (0.80, 0.56, 0.28)
SAUCE: dict[str, RGB] = {
    "tomato": (0.74, 0.16, 0.10),
    "bianca": (0.94, 0.90, 0.78),
    "pesto": (0.34, 0.50, 0.16),
}
CHEESE_RAW: RGB = (0.99, 0.98, 0.92)
CHEESE_BAKED: RGB = (0.98, 0.85, 0.52)
BROWN_SPOT: RGB = (0.72, 0.45, 0.18)
CHAR: RGB = (0.11, 0.08, 0.06)
TOPPING_KINDS = ("pepperoni", "mushroom", "olive", "pepper", "ham", "onion")


@dataclass
class Pie:
    """Pixel coordinates of one image in the pie frame: x, y in pie radii, r, theta."""

    x: Array
    y: Array
    r: Array
    theta: Array
    rotation: float
    squash: float
    radius: float  # pixels
    center: tuple[float, float]  # pixels

    def window(self, x: float, y: float, reach: float) -> tuple[slice, slice]:
        """Pixel rows and columns within `reach` pie radii of pie-frame point (x, y)."""
        a, b = x * self.radius, y * self.radius * self.squash
        u = a * np.cos(self.rotation) - b * np.sin(self.rotation) + self.center[0]
        v = a * np.sin(self.rotation) + b * np.cos(self.rotation) + self.center[1]
        half = reach * self.radius + 2
        rows, cols = self.x.shape
        return (
            slice(int(np.clip(v - half, 0, rows)), int(np.clip(v + half + 1, 0, rows))),
            slice(int(np.clip(u - half, 0, cols)), int(np.clip(u + half + 1, 0, cols))),
        )

    def crop(self, window: tuple[slice, slice]) -> Pie:
        return Pie(
            x=self.x[window],
            y=self.y[window],
            r=self.r[window],
            theta=self.theta[window],
            rotation=self.rotation,
            squash=self.squash,
            radius=self.radius,
            center=self.center,
        )

    def angle_of(self, picture_angle: float) -> float:
        """The pie-frame angle of a direction given as an angle in the picture."""
        u, v = np.cos(picture_angle), np.sin(picture_angle)
        a = u * np.cos(self.rotation) + v * np.sin(self.rotation)
        b = (-u * np.sin(self.rotation) + v * np.cos(self.rotation)) / self.squash
        return float(np.arctan2(b, a))


@dataclass
class Recipe:
    """What lies on (part of) a pie."""

    sauce: str
    cheese: float  # fraction of the sauce covered by cheese
    toppings: dict[str, int]  # kind -> number of pieces


# --- small helpers ---------------------------------------------------------------------------


def _jitter(rng: np.random.Generator, color: RGB, amount: float = 0.04) -> Array:
    return np.clip(np.asarray(color, np.float32) + rng.uniform(-amount, amount, 3), 0, 1)


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> Array:
    """Low-frequency noise in [0, 1]: a random cells x cells grid, bicubically upsampled."""
    grid = rng.random((cells, cells), dtype=np.float32)
    field = Image.fromarray(grid, mode="F").resize((size, size), Image.Resampling.BICUBIC)
    out = np.asarray(field, dtype=np.float32)
    lo, hi = float(out.min()), float(out.max())
    return (out - lo) / max(hi - lo, 1e-6)


def _threshold_for(field: Array, mask: Array, fraction: float) -> float:
    """The value above which `fraction` of `field` inside `mask` lies."""
    values = field[mask]
    if values.size == 0:
        return 1.0
    return float(np.quantile(values, 1.0 - fraction))


def _paint(canvas: Array, mask: Array, color: Array | RGB, alpha: float | Array = 1.0) -> None:
    """Blends `color` over `canvas` where `mask` holds (mask may be soft, in [0, 1])."""
    weight = np.asarray(mask, np.float32) * alpha
    where = weight > 0
    if not where.any():
        return
    paint = np.asarray(color, np.float32)
    if paint.ndim == 3:
        paint = paint[where]
    canvas[where] += (paint - canvas[where]) * weight[where][:, None]


def _soft(distance: Array, edge: float) -> Array:
    """1 inside (distance < 0), 0 outside, a linear ramp `edge` wide: antialiased shapes."""
    return np.clip(0.5 - distance / edge, 0.0, 1.0)


# --- background and geometry ---------------------------------------------------------------


def _background(rng: np.random.Generator, size: int) -> Array:
    kind = rng.integers(4)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size
    if kind == 0:  # wooden board: stripes plus grain
        base = _jitter(rng, (0.55, 0.38, 0.22), 0.08)
        angle = rng.uniform(0, np.pi)
        stripes = np.sin((xs * np.cos(angle) + ys * np.sin(angle)) * rng.uniform(20, 50))
        canvas = base * (
            1 + 0.08 * stripes[..., None] + 0.1 * (_smooth_noise(rng, size, 6) - 0.5)[..., None]
        )
    elif kind == 1:  # slate or steel: dark, mottled
        base = _jitter(rng, (0.25, 0.26, 0.28), 0.08)
        canvas = base * (1 + 0.3 * (_smooth_noise(rng, size, 10) - 0.5))[..., None]
    elif kind == 2:  # checkered tablecloth
        a, b = _jitter(rng, (0.85, 0.85, 0.82), 0.06), _jitter(rng, tuple(rng.uniform(0.2, 0.8, 3)))
        period = rng.uniform(0.12, 0.3)
        checks = ((np.floor(xs / period) + np.floor(ys / period)) % 2)[..., None]
        canvas = a * checks + b * (1 - checks)
    else:  # plain plate or paper with soft shading
        base = _jitter(rng, (0.9, 0.9, 0.88), 0.08)
        canvas = base * (1 - 0.15 * _smooth_noise(rng, size, 3))[..., None]
    out: Array = np.clip(np.broadcast_to(canvas, (size, size, 3)), 0, 1).astype(np.float32)
    return out


def _pie_frame(
    rng: np.random.Generator, size: int, radius: float, center: tuple[float, float]
) -> Pie:
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    u, v = xs - center[0], ys - center[1]
    rotation = rng.uniform(0, 2 * np.pi)
    squash = rng.uniform(0.82, 1.0)  # a little perspective
    a = (u * np.cos(rotation) + v * np.sin(rotation)) / radius
    b = (-u * np.sin(rotation) + v * np.cos(rotation)) / (radius * squash)
    return Pie(
        x=a,
        y=b,
        r=np.hypot(a, b),
        theta=np.arctan2(b, a),
        rotation=rotation,
        squash=squash,
        radius=radius,
        center=center,
    )


# --- the pie surface ------------------------------------------------------------------------


def _random_points(rng: np.random.Generator, n: int, max_r: float) -> Array:
    r = max_r * np.sqrt(rng.random(n))
    t = rng.uniform(0, 2 * np.pi, n)
    return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)


def _topping(
    rng: np.random.Generator,
    canvas: Array,
    pie: Pie,
    *,
    kind: str,
    x0: float,
    y0: float,
    region: Array,
    edge: float,
) -> None:
    dx, dy = pie.x - x0, pie.y - y0
    d = np.hypot(dx, dy)
    s = rng.uniform(0.95, 1.3)
    if kind == "pepperoni":
        radius = 0.11 * s
        _paint(canvas, _soft(d - radius, edge) * region, _jitter(rng, (0.62, 0.12, 0.09)))
        _paint(
            canvas, _soft(d - radius * 0.75, edge) * region, _jitter(rng, (0.72, 0.18, 0.12)), 0.6
        )
    elif kind == "mushroom":
        radius = 0.08 * s
        _paint(canvas, _soft(d - radius, edge) * region, _jitter(rng, (0.72, 0.63, 0.52)))
        stem = _soft(np.abs(dx * np.sin(s * 9) - dy * np.cos(s * 9)) - 0.015, edge) * (
            d < radius * 0.8
        )
        _paint(canvas, stem * region, (0.48, 0.38, 0.30), 0.8)
    elif kind == "olive":
        ring = _soft(np.abs(d - 0.045 * s) - 0.017, edge)
        _paint(canvas, ring * region, _jitter(rng, (0.07, 0.07, 0.07), 0.03))
    elif kind == "pepper":
        half = np.cos(np.arctan2(dy, dx) - s * 7) > -0.2
        ring = _soft(np.abs(d - 0.07 * s) - 0.014, edge) * half
        _paint(canvas, ring * region, _jitter(rng, (0.14, 0.55, 0.14)))
    elif kind == "ham":
        angle = s * 11
        ca, sa = np.cos(angle), np.sin(angle)
        box = np.maximum(np.abs(dx * ca + dy * sa), np.abs(-dx * sa + dy * ca)) - 0.065 * s
        _paint(canvas, _soft(box, edge) * region, _jitter(rng, (0.93, 0.58, 0.58)))
    elif kind == "onion":
        ring = _soft(np.abs(d - 0.06 * s) - 0.01, edge)
        _paint(canvas, ring * region, _jitter(rng, (0.78, 0.58, 0.80)))
    elif kind == "basil":
        angle = s * 13
        ca, sa = np.cos(angle), np.sin(angle)
        ellipse = np.hypot((dx * ca + dy * sa) / 0.075, (-dx * sa + dy * ca) / 0.038) - 1
        _paint(canvas, _soft(ellipse * 0.04, edge) * region, _jitter(rng, (0.10, 0.38, 0.10)))
    else:
        raise ValueError(f"unknown topping {kind!r}")


def _surface(
    rng: np.random.Generator,
    canvas: Array,
    pie: Pie,
    recipe: Recipe,
    *,
    region: Array,
    bake: Array,
    inner: float,
    edge: float,
) -> None:
    """Sauce, cheese and toppings of `recipe`, painted where `region` holds."""
    size = canvas.shape[0]
    _paint(canvas, region, _jitter(rng, SAUCE[recipe.sauce]))
    sauce_texture = _smooth_noise(rng, size, 12) - 0.5
    canvas *= (1 + 0.12 * sauce_texture * region)[..., None]
    # Cheese: melted blobs where baked, fine white shreds where raw.
    blobs = _smooth_noise(rng, size, int(rng.integers(6, 11)))
    shreds = _smooth_noise(rng, size, 30)
    field = blobs * bake + shreds * (1 - bake)
    inside = region > 0.5
    cheese = (field > _threshold_for(field, inside, recipe.cheese)) & inside
    cheese_color = (
        np.asarray(CHEESE_RAW, np.float32) * (1 - bake[..., None])
        + np.asarray(CHEESE_BAKED, np.float32) * bake[..., None]
    )
    canvas[cheese] = (cheese_color * (0.95 + 0.1 * rng.random((size, size, 1), dtype=np.float32)))[
        cheese
    ]
    spots = _smooth_noise(rng, size, 18)
    spot_mask = (spots > 0.78) & cheese & (bake > 0.75)
    _paint(canvas, spot_mask, _jitter(rng, BROWN_SPOT), 0.55)
    for kind, count in recipe.toppings.items():
        for x0, y0 in _random_points(rng, count, inner - 0.1):
            win = pie.window(float(x0), float(y0), 0.2)
            _topping(
                rng,
                canvas[win],
                pie.crop(win),
                kind=kind,
                x0=float(x0),
                y0=float(y0),
                region=region[win],
                edge=edge,
            )


def _crust(
    rng: np.random.Generator, canvas: Array, ring: Array, pie: Pie, *, bake: Array, width: float
) -> None:
    color = (
        np.asarray(CRUST_RAW, np.float32) * (1 - bake[..., None])
        + _jitter(rng, CRUST_BAKED) * bake[..., None]
    )
    # Rounded rim: darker towards the outer edge, lighter on the top of the rim.
    rim = np.clip((pie.r - (1 - width)) / width, 0, 1)
    shade = 1 - 0.25 * rim**2 + 0.08 * np.sin(rim * np.pi)
    texture = 1 + 0.1 * (_smooth_noise(rng, canvas.shape[0], 20) - 0.5)
    _paint(canvas, ring, color * (shade * texture)[..., None])


def _char(rng: np.random.Generator, canvas: Array, pie_mask: Array, fraction: float) -> None:
    size = canvas.shape[0]
    field = _smooth_noise(rng, size, int(rng.integers(4, 8)))
    # bias towards the rim: ovens burn the edge first
    threshold = _threshold_for(field, pie_mask > 0.5, fraction)
    burnt = np.clip((field - threshold) / 0.06, 0, 1) * pie_mask
    color = _jitter(rng, CHAR, 0.05) * (0.8 + 0.4 * rng.random((size, size, 1), dtype=np.float32))
    _paint(canvas, burnt, color)
    halo = np.clip((field - threshold + 0.08) / 0.08, 0, 1) * pie_mask
    _paint(canvas, halo, _jitter(rng, (0.35, 0.22, 0.12)), 0.6)


def _cuts(rng: np.random.Generator, canvas: Array, pie: Pie, mask: Array, edge: float) -> None:
    n = int(rng.choice([0, 0, 3, 4]))
    offset = rng.uniform(0, np.pi)
    for k in range(n):
        angle = offset + k * np.pi / n
        distance = np.abs(pie.x * np.sin(angle) - pie.y * np.cos(angle))
        _paint(canvas, _soft(distance - 0.008, edge) * mask, (0.35, 0.25, 0.18), 0.7)


# --- the six classes ------------------------------------------------------------------------


def _topping_set(rng: np.random.Generator, kinds: int, pieces: tuple[int, int]) -> dict[str, int]:
    chosen = rng.choice(TOPPING_KINDS, size=kinds, replace=False)
    total = int(rng.integers(pieces[0], pieces[1] + 1))
    if not kinds:
        return {}
    split = rng.multinomial(total - kinds, [1 / kinds] * kinds) + 1
    return {str(k): int(n) for k, n in zip(chosen, split, strict=True)}


def _whole_pie(rng: np.random.Generator, canvas: Array, label: str) -> None:
    size = canvas.shape[0]
    radius = rng.uniform(0.42, 0.49) * size
    center = (
        size / 2 + rng.uniform(-0.06, 0.06) * size,
        size / 2 + rng.uniform(-0.06, 0.06) * size,
    )
    pie = _pie_frame(rng, size, radius, center)
    edge = 1.5 / radius
    width = rng.uniform(0.1, 0.16)
    inner = 1 - width
    pie_mask = _soft(pie.r - 1, edge)
    surface = _soft(pie.r - inner, edge)
    ring = pie_mask * (1 - surface)

    bake = np.full((size, size), rng.uniform(0.85, 1.0), np.float32)
    if label == "progression":
        direction = rng.uniform(0, 2 * np.pi)
        along = pie.x * np.cos(direction) + pie.y * np.sin(direction)  # -1 .. 1 across the pie
        steep = rng.uniform(1.2, 2.5)
        bake = np.clip(0.5 + steep * 0.5 * along + 0.08 * (_smooth_noise(rng, size, 6) - 0.5), 0, 1)

    _crust(rng, canvas, ring, pie, bake=bake, width=width)
    if label == "mixed":
        angle = rng.uniform(0, 2 * np.pi)
        side = pie.x * np.cos(angle) + pie.y * np.sin(angle) - rng.uniform(-0.1, 0.1)
        half_a = _soft(side, edge) * surface
        half_b = _soft(-side, edge) * surface
        sauces = ["tomato", str(rng.choice(["bianca", "pesto"]))]
        kinds = rng.choice(TOPPING_KINDS, size=2, replace=False)
        for sauce, kind, half in zip(sauces, kinds, (half_a, half_b), strict=True):
            count = int(rng.integers(3, 7))
            recipe = Recipe(sauce, rng.uniform(0.2, 0.5), {str(kind): count})
            _surface(rng, canvas, pie, recipe, region=half, bake=bake, inner=inner, edge=edge)
        seam = _soft(np.abs(side) - 0.012, edge) * surface
        _paint(canvas, seam, (0.55, 0.40, 0.25), 0.6)
    else:
        recipe = _recipe_for(rng, label)
        _surface(rng, canvas, pie, recipe, region=surface, bake=bake, inner=inner, edge=edge)
    if label == "burnt":
        _char(rng, canvas, pie_mask, rng.uniform(0.15, 0.4))
    _cuts(rng, canvas, pie, pie_mask, edge)


def _recipe_for(rng: np.random.Generator, label: str) -> Recipe:
    if label == "basic":
        return Recipe("tomato", rng.uniform(0.55, 0.85), {"basil": int(rng.integers(0, 4))})
    if label == "combined":
        sauce = "tomato"
        return Recipe(
            sauce, rng.uniform(0.45, 0.75), _topping_set(rng, int(rng.integers(3, 5)), (24, 36))
        )
    if label == "burnt":
        sauce = "tomato" if rng.random() < 0.8 else "bianca"
        kinds = int(rng.integers(0, 2))
        return Recipe(sauce, rng.uniform(0.45, 0.8), _topping_set(rng, kinds, (3, 8)))
    if label == "progression":
        kinds = int(rng.integers(0, 2))
        return Recipe("tomato", rng.uniform(0.5, 0.8), _topping_set(rng, kinds, (3, 8)))
    if label == "segment":
        kinds = int(rng.integers(0, 4))
        return Recipe("tomato", rng.uniform(0.45, 0.8), _topping_set(rng, kinds, (4, 12)))
    raise ValueError(f"no single recipe for class {label!r}")


def _slice(rng: np.random.Generator, canvas: Array) -> None:
    """One wedge of a pie, apex towards the middle of the picture."""
    size = canvas.shape[0]
    radius = rng.uniform(0.55, 0.75) * size
    half_angle = rng.uniform(np.radians(18), np.radians(30))
    direction = rng.uniform(0, 2 * np.pi)
    # Put the wedge's middle near the centre of the picture.
    reach = radius * 0.55
    center = (
        size / 2 - reach * np.cos(direction) + rng.uniform(-0.05, 0.05) * size,
        size / 2 - reach * np.sin(direction) + rng.uniform(-0.05, 0.05) * size,
    )
    pie = _pie_frame(rng, size, radius, center)
    axis = pie.angle_of(direction)
    edge = 1.5 / radius
    width = rng.uniform(0.1, 0.16)
    inner = 1 - width
    off_axis = np.abs(np.angle(np.exp(1j * (pie.theta - axis))))
    # distance (in pie radii) outside the wedge's straight sides, for antialiasing
    outside_sides = (off_axis - half_angle) * np.maximum(pie.r, 0.02)
    wedge = _soft(np.maximum(pie.r - 1, outside_sides), edge)
    inside_rim = _soft(pie.r - inner, edge)
    bake = np.full((size, size), rng.uniform(0.85, 1.0), np.float32)
    _crust(rng, canvas, wedge * (1 - inside_rim), pie, bake=bake, width=width)
    recipe = _recipe_for(rng, "segment")
    _surface(rng, canvas, pie, recipe, region=wedge * inside_rim, bake=bake, inner=inner, edge=edge)
    # The cut sides: a thin band where cheese was pulled and dough shows.
    band = wedge * inside_rim * (1 - _soft(outside_sides + 0.025, edge))
    _paint(canvas, band, (0.92, 0.82, 0.58), 0.5)


# --- photography: light, blur, noise --------------------------------------------------------


def _photograph(rng: np.random.Generator, canvas: Array) -> Image.Image:
    size = canvas.shape[0]
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    angle = rng.uniform(0, 2 * np.pi)
    gradient = 1 + rng.uniform(0, 0.35) * (xs * np.cos(angle) + ys * np.sin(angle))
    vignette = 1 - rng.uniform(0, 0.35) * (xs**2 + ys**2) * 2
    gain = rng.uniform(0.7, 1.2) * rng.uniform(0.9, 1.1, 3).astype(
        np.float32
    )  # exposure, white balance
    lit = canvas * (gradient * vignette)[..., None] * gain
    lit = (lit - 0.5) * rng.uniform(0.8, 1.15) + 0.5  # contrast
    image = Image.fromarray((np.clip(lit, 0, 1) * 255 + 0.5).astype(np.uint8), mode="RGB")
    blur = rng.uniform(0, 1.2)
    if blur > 0.2:
        image = image.filter(ImageFilter.GaussianBlur(blur))
    noisy = np.asarray(image, np.float32) + rng.normal(0, rng.uniform(0, 10), (size, size, 3))
    return Image.fromarray(np.clip(noisy + 0.5, 0, 255).astype(np.uint8), mode="RGB")


# --- public API -----------------------------------------------------------------------------


def render(label: str, rng: np.random.Generator, size: int = RENDER_SIZE) -> Image.Image:
    """One RGB image of class `label`, drawn with randomness from `rng` only."""
    if label not in CLASSES:
        raise ValueError(f"unknown class {label!r}; classes are {', '.join(CLASSES)}")
    if size < 32:
        raise ValueError(f"render size must be at least 32, got {size}")
    canvas = _background(rng, size)
    if label == "segment":
        _slice(rng, canvas)
    else:
        _whole_pie(rng, canvas, label)
    return _photograph(rng, canvas)


def image_rng(seed: int, class_index: int, index: int) -> np.random.Generator:
    """The generator of image `index` of class `class_index` in the stream `seed`."""
    return np.random.default_rng([seed, class_index, index])


def samples(
    seed: int, per_class: int, size: int = RENDER_SIZE, start: int = 0
) -> Iterator[tuple[int, Image.Image]]:
    """(class index, image) pairs, `per_class` of each class, interleaved class by class.

    Image i of class c depends only on (seed, c, i): the same seed gives the same bytes, any
    count gives a prefix of a larger count, and different seeds give independent streams.
    """
    if per_class < 0:
        raise ValueError(f"per_class must be >= 0, got {per_class}")
    for index in range(start, start + per_class):
        for class_index, label in enumerate(CLASSES):
            yield class_index, render(label, image_rng(seed, class_index, index), size)


SampleFn = Callable[[int, int], Iterator[tuple[int, Image.Image]]]
