"""Calibration boards defined as data (``configs/boards/*.toml``) and rendered at physical scale.

Corner ids and object points (metres, board frame: x along the rows of squares, y along the
columns, z into the board, origin at the first inner corner):

* checkerboard: ``corners_x × corners_y`` inner corners, id = row · corners_x + column, the order
  of OpenCV's ``findChessboardCorners``. Boards whose pattern looks the same turned by 180°
  (corners_x + corners_y even) or 90° (square) cannot tell one end from the other and are refused.
* ChArUco: the ``(squares_x − 1) × (squares_y − 1)`` inner chessboard corners, ids as OpenCV's.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np

from mocap.config_files import check_keys, load_preset

PAPER_MM = {"a4": (210.0, 297.0), "a3": (297.0, 420.0), "a2": (420.0, 594.0), "a1": (594.0, 841.0),
            "a0": (841.0, 1189.0), "letter": (215.9, 279.4), "tabloid": (279.4, 431.8)}
CHARUCO_KEYS = {"type", "dictionary", "squares_x", "squares_y", "square_size", "marker_size", "legacy"}
CHECKER_KEYS = {"type", "corners_x", "corners_y", "square_size"}
MAX_SQUARES = 1000  # per side: far beyond any printable board (the image would not fit in memory)
MAX_SQUARE_SIZE = 2.0  # metres


def aruco_dictionaries() -> list[str]:
    """The predefined ArUco dictionary names of this OpenCV (``DICT_4X4_50`` ...)."""
    return sorted(n for n in dir(cv2.aruco) if n.startswith("DICT_") and isinstance(getattr(cv2.aruco, n), int))


@dataclass(frozen=True)
class Board:
    name: str
    type: str  # "charuco" | "checkerboard"
    squares_x: int
    squares_y: int
    square_size: float  # metres
    marker_size: float = 0.0  # metres (ChArUco)
    dictionary: str = ""
    legacy: bool = False

    def __post_init__(self) -> None:
        where = f"board {self.name!r}"
        if self.type not in ("charuco", "checkerboard"):
            raise ValueError(f"{where}: type must be charuco or checkerboard, got {self.type!r}")
        if self.squares_x < 3 or self.squares_y < 3:
            raise ValueError(f"{where}: needs at least 3 x 3 squares (2 x 2 inner corners)")
        if not self.square_size > 0:
            raise ValueError(f"{where}: square_size must be positive (metres), got {self.square_size}")
        if self.type == "charuco":
            if not 0 < self.marker_size < self.square_size:
                raise ValueError(f"{where}: marker_size must be between 0 and square_size, got {self.marker_size}")
            if self.dictionary not in aruco_dictionaries():
                raise ValueError(f"{where}: unknown ArUco dictionary {self.dictionary!r}; expected one of "
                                 f"{aruco_dictionaries()}")
            markers = self.squares_x * self.squares_y // 2  # one on every other square
            held = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, self.dictionary)).bytesList.shape[0]
            if markers > held:  # OpenCV failed deep inside on rendering or detecting it
                raise ValueError(f"{where}: {self.squares_x} x {self.squares_y} squares need {markers} markers, "
                                 f"{self.dictionary} holds {held}: a larger dictionary (e.g. DICT_4X4_250)")
        else:
            cx, cy = self.squares_x - 1, self.squares_y - 1
            if cx == cy:
                raise ValueError(f"{where}: a square checkerboard ({cx} x {cy} inner corners) is ambiguous under "
                                 "rotation; use different numbers of corners along x and y")
            if (cx + cy) % 2 == 0:
                raise ValueError(f"{where}: a {cx} x {cy} checkerboard looks the same turned by 180°; use one even "
                                 "and one odd number of inner corners (e.g. 9 x 6)")

    @property
    def corners_x(self) -> int:
        return self.squares_x - 1

    @property
    def corners_y(self) -> int:
        return self.squares_y - 1

    @property
    def n_corners(self) -> int:
        return self.corners_x * self.corners_y

    @cached_property
    def object_points(self) -> np.ndarray:
        """(n_corners, 3) corner positions in the board frame (metres)."""
        j, i = np.divmod(np.arange(self.n_corners), self.corners_x)
        return np.stack([i * self.square_size, j * self.square_size, np.zeros(self.n_corners)], axis=1)

    @property
    def size_m(self) -> tuple[float, float]:
        return self.squares_x * self.square_size, self.squares_y * self.square_size

    def cv_charuco(self):
        board = cv2.aruco.CharucoBoard((self.squares_x, self.squares_y), self.square_size, self.marker_size,
                                       cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, self.dictionary)))
        board.setLegacyPattern(self.legacy)
        return board

    def image(self, px_per_square: int) -> np.ndarray:
        """The board pattern alone, ``px_per_square`` pixels per square, white background, uint8."""
        w, h = self.squares_x * px_per_square, self.squares_y * px_per_square
        if self.type == "charuco":
            return self.cv_charuco().generateImage((w, h), marginSize=0, borderBits=1)
        ii, jj = np.meshgrid(np.arange(w) // px_per_square, np.arange(h) // px_per_square)
        # the square inside inner corners 0, 1, corners_x, corners_x + 1 (square (1, 1)) is black
        return np.where((ii + jj) % 2 == 0, 0, 255).astype(np.uint8)

    def render(self, dpi: float = 300.0, paper: str | tuple[float, float] | None = None) -> np.ndarray:
        """Printable image at exact physical scale for ``dpi``, centred on ``paper`` (name or mm)."""
        px_per_m = dpi / 0.0254
        px_per_square = self.square_size * px_per_m
        if px_per_square < 20:
            raise ValueError(f"board {self.name!r}: {dpi:g} dpi gives {px_per_square:.1f} px per square; "
                             "use a higher dpi")
        if abs(px_per_square - round(px_per_square)) < 1e-9:
            pattern = self.image(int(round(px_per_square)))
        else:  # render finer, then area-average to the exact size: the whole board is within half a pixel
            fine = self.image(4 * int(np.ceil(px_per_square)))
            size = (int(round(self.squares_x * px_per_square)), int(round(self.squares_y * px_per_square)))
            pattern = cv2.resize(fine, size, interpolation=cv2.INTER_AREA)
        if paper is None:
            margin = int(round(0.01 * px_per_m))
            return cv2.copyMakeBorder(pattern, margin, margin, margin, margin, cv2.BORDER_CONSTANT, value=255)
        w_mm, h_mm = PAPER_MM[paper.lower()] if isinstance(paper, str) else paper
        W, H = int(round(w_mm / 1000 * px_per_m)), int(round(h_mm / 1000 * px_per_m))
        if pattern.shape[1] > W or pattern.shape[0] > H:
            if pattern.shape[0] <= W and pattern.shape[1] <= H:
                W, H = H, W  # landscape
            else:
                raise ValueError(f"board {self.name!r} ({self.size_m[0] * 1000:.0f} x {self.size_m[1] * 1000:.0f} mm) "
                                 f"does not fit on {paper} paper ({w_mm:g} x {h_mm:g} mm)")
        page = np.full((H, W), 255, np.uint8)
        y0, x0 = (H - pattern.shape[0]) // 2, (W - pattern.shape[1]) // 2
        page[y0 : y0 + pattern.shape[0], x0 : x0 + pattern.shape[1]] = pattern
        return page


def _typed(path, table: dict, key: str, kind: type, most: float | None = None):
    value = table[key]
    ok = isinstance(value, kind) and not isinstance(value, bool) if kind is not bool else isinstance(value, bool)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        ok, value = True, float(value)
    if not ok:
        what = {int: "a whole number", float: "a number (metres)", str: "a string", bool: "true or false"}[kind]
        raise ValueError(f"{path}: {key} must be {what}, got {value!r}")
    if kind in (int, float) and not 0 < value < float("inf"):
        raise ValueError(f"{path}: {key} must be positive, got {value!r}")
    if most is not None and value > most:
        unit = " m" if kind is float else ""
        raise ValueError(f"{path}: {key} = {value!r} is not a plausible board (at most {most:g}{unit})")
    return value


def load_board(name: str) -> Board:
    """Load a board preset by name (``charuco_a4``) or from a TOML file."""
    try:
        table, path = load_preset("boards", name)
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{name}: cannot read the board file: {e}") from None
    kind = table.get("type")
    if kind == "charuco":
        check_keys(table, CHARUCO_KEYS, str(path))
        missing = CHARUCO_KEYS - set(table) - {"legacy"}
    elif kind == "checkerboard":
        check_keys(table, CHECKER_KEYS, str(path))
        missing = CHECKER_KEYS - set(table)
    else:
        raise ValueError(f"{path}: type must be \"charuco\" or \"checkerboard\", got {kind!r}")
    if missing:
        raise ValueError(f"{path}: missing {sorted(missing)}")
    try:
        if kind == "charuco":
            dictionary = _typed(path, table, "dictionary", str)
            if dictionary not in aruco_dictionaries():
                raise ValueError(f"{path}: unknown ArUco dictionary {dictionary!r}; expected one of "
                                 f"{aruco_dictionaries()}")
            legacy = _typed(path, table, "legacy", bool) if "legacy" in table else False
            return Board(Path(path).stem, kind, _typed(path, table, "squares_x", int, MAX_SQUARES),
                         _typed(path, table, "squares_y", int, MAX_SQUARES),
                         _typed(path, table, "square_size", float, MAX_SQUARE_SIZE),
                         _typed(path, table, "marker_size", float, MAX_SQUARE_SIZE), dictionary, legacy)
        return Board(Path(path).stem, kind, _typed(path, table, "corners_x", int, MAX_SQUARES - 1) + 1,
                     _typed(path, table, "corners_y", int, MAX_SQUARES - 1) + 1,
                     _typed(path, table, "square_size", float, MAX_SQUARE_SIZE))
    except ValueError as e:
        raise ValueError(str(e) if str(e).startswith(str(path)) else f"{path}: {e}") from None


def save_board_image(board: Board, path: str | Path, dpi: float = 300.0, paper: str | None = None) -> Path:
    """PNG or PDF at exact physical scale (the PNG carries the dpi so printers keep the size)."""
    from PIL import Image

    path = Path(path)
    img = Image.fromarray(board.render(dpi, paper))
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".pdf":
        img.save(path, "PDF", resolution=dpi)
    else:
        img.save(path, dpi=(dpi, dpi))
    return path
