"""CAPTCHA images: rendered offline with the ``captcha`` library, or read from a folder named by text.

* ``render``: ``captcha.image.ImageCaptcha(width, height).generate_image(text)`` on a ``render_width`` ×
  ``render_height`` canvas (the public CAPTCHA sets are 200×50), resized to the model input. The library draws its
  randomness from :mod:`secrets`, which cannot be seeded; :func:`seeded_captcha_randomness` substitutes a seeded
  generator for the duration of a render, so the same seed gives the same images.
* a folder: every file is an image whose file name gives its text: by default its stem (``2b827.png``; a suffix
  after ``_`` is ignored, ``2b827_1.png``), or the original's ``name[:-5][-6:]`` (``data.label_rule``), lower-cased
  unless ``data.keep_case``, any size, converted to the model's channels and size. A non-image file or an
  unreadable image stops loading with a :class:`~gencore.errors.DataError` naming the file. The folder is flat:
  sub-folders that hold images are refused (loose images beside them are ambiguous, gencore.data.refuse_mixed),
  instead of being silently left out.

Images are kept as uint8 (N, C, H, W) in memory and served as float tensors in [-1, 1].

Rendering the default 8192 CAPTCHAs takes about 16 s on one CPU thread. So each image is drawn from a random stream
of its own (:func:`image_rng`), which makes it renderable alone: a first run renders each image when training first
uses it (:class:`LazyRenders`) and starts after one batch, not after the whole set. Once every image is drawn, the
set is kept in the user's cache (``gencore.fileio.cache_dir()``, folder ``hvae-captcha-renders``) under a hash of
everything it depends on (:func:`render_key`): a later run with the same data settings, size and seed reads the
very same images, texts and layouts from there (verified against its manifest; a damaged entry is rendered again
and replaced).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, get_worker_info

from gencore.checkpoint import atomic_cache_dir, load_tree, save_tree, verify_dir
from gencore.data import (
    IMAGE_EXTENSIONS,
    announce,
    count_summary,
    folder_layout,
    load_image,
    refuse_mixed,
    split_indices,
)
from gencore.distributed import is_launch_main
from gencore.errors import CheckpointError, DataError, OutputError
from gencore.fileio import cache_dir
from gencore.paths import safe_join, safe_name
from gencore.progress import progress
from hvae_captcha.config import DataConfig, ModelConfig
from hvae_captcha.model import encode_texts


class _SeededSecrets:
    """The three functions of :mod:`secrets` the captcha library calls, backed by a seeded ``random.Random``."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def randbelow(self, n: int) -> int:
        return self._rng.randrange(n)

    def randbits(self, k: int) -> int:
        return self._rng.getrandbits(k)

    def choice(self, seq):  # noqa: ANN001, ANN201 - mirrors secrets.choice
        return self._rng.choice(seq)


@contextlib.contextmanager
def seeded_captcha_randomness(rng: random.Random) -> Iterator[None]:
    """Make the captcha library draw from ``rng`` inside the block (restored afterwards, also on errors)."""
    import captcha.image as captcha_image

    if not hasattr(captcha_image, "secrets"):
        raise DataError("this version of the captcha library does not draw from `secrets`; install captcha>=0.7")
    saved = captcha_image.secrets
    captcha_image.secrets = _SeededSecrets(rng)
    try:
        yield
    finally:
        captcha_image.secrets = saved


def _make_renderer(config: DataConfig):  # noqa: ANN202 - an ImageCaptcha subclass instance
    from captcha.image import ImageCaptcha

    for font in config.fonts:
        if not Path(font).is_file():
            raise DataError(f"font file not found: {font}")

    class Renderer(ImageCaptcha):
        """ImageCaptcha with the amount of noise taken from the config, and a record of the glyphs it draws
        (character, glyph image) so that :func:`_recording_pastes` can say where each one went."""

        def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003 - ImageCaptcha's signature
            super().__init__(*args, **kwargs)
            self.glyphs: list = []

        def _draw_character(self, c, draw, color):  # noqa: ANN001, ANN202
            glyph = super()._draw_character(c, draw, color)
            self.glyphs.append((c, glyph))
            return glyph

        def create_noise_dots(self, image, color, width=3, number=30):  # noqa: ANN001, ANN201
            return super().create_noise_dots(image, color, width, config.noise_dots) if config.noise_dots else image

        def create_noise_curve(self, image, color):  # noqa: ANN001, ANN201
            return super().create_noise_curve(image, color) if config.noise_curve else image

    return Renderer(config.render_width, config.render_height, fonts=config.fonts or None,
                    font_sizes=tuple(config.font_sizes))  # fmt: skip


@contextlib.contextmanager
def _recording_pastes(pasted: dict[int, tuple[int, int]]) -> Iterator[None]:
    """Record, per pasted image id, its x offset and the canvas width: the library places each glyph with one
    ``Image.paste`` onto the canvas and keeps no other record of where (restored afterwards, also on errors)."""
    saved = Image.Image.paste

    def paste(canvas, im, box=None, mask=None):  # noqa: ANN001, ANN202
        if isinstance(im, Image.Image) and isinstance(box, tuple):
            pasted[id(im)] = (int(box[0]), canvas.size[0])
        return saved(canvas, im, box, mask)

    Image.Image.paste = paste
    try:
        yield
    finally:
        Image.Image.paste = saved


def image_rng(seed: int, index: int) -> random.Random:
    """The random stream of image ``index`` of a set drawn with ``seed`` (its text, then everything the captcha
    library draws for it). Each image has a stream of its own, so any image can be rendered alone, in any order
    and in any process, and is the same image; in one stream for the whole set, image i would depend on every
    image before it (the library's random ranges depend on the sizes of the glyphs it has just drawn)."""
    digest = hashlib.sha256(f"hvae-captcha/{seed}/{index}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def draw_text(rng: random.Random, alphabet: str, length: int) -> str:
    """A random text of ``length`` characters of ``alphabet``."""
    return "".join(rng.choice(alphabet) for _ in range(length))


def render_one(renderer, text: str, rng: random.Random) -> tuple[Image.Image, list[float]]:  # noqa: ANN001
    """One CAPTCHA of ``text`` (PIL, render size) drawn by ``renderer`` (:func:`_make_renderer`) from ``rng``, and
    each character's centre as a fraction of the width (the layout)."""
    if not text:  # the library divides by the text length
        raise DataError("cannot render an empty CAPTCHA text")
    renderer.glyphs, pasted = [], {}
    with seeded_captcha_randomness(rng), _recording_pastes(pasted):
        image = renderer.generate_image(text)
    centres = [(pasted[id(g)][0] + g.size[0] / 2) / pasted[id(g)][1] for c, g in renderer.glyphs if c != " "]
    if len(centres) != len(text):  # pragma: no cover - only if the library stops pasting glyph by glyph
        raise DataError("could not record where the captcha library drew the characters (captcha 0.7.x)")
    return image, centres


def draw_captcha(
    renderer, rng: random.Random, alphabet: str, length: int, text: str | None = None  # noqa: ANN001
) -> tuple[str, Image.Image, list[float]]:
    """One image's draw from its stream ``rng``: its text (``length`` characters of ``alphabet``, unless ``text`` is
    given), then the CAPTCHA and its layout (:func:`render_one`)."""
    text = text if text is not None else draw_text(rng, alphabet, length)
    return (text, *render_one(renderer, text, rng))


def render_captchas(
    config: DataConfig, alphabet: str, n: int, seed: int, texts: list[str] | None = None
) -> tuple[list[Image.Image], list[str], list[list[float]]]:
    """``n`` CAPTCHA images (PIL, render size) with random texts over ``alphabet`` (or the given ``texts``), and
    each character's centre as a fraction of the width (the layout). ``config.render_format`` 2: image i is drawn
    from ``image_rng(seed, i)``; 1: all from one stream seeded with ``seed``, in order. Either way the first k of n
    are the k of a smaller set."""
    if not alphabet and texts is None:
        raise DataError("the alphabet to draw CAPTCHA texts from is empty")
    renderer = _make_renderer(config)
    images, drawn, layouts = [], [], []
    one_stream = random.Random(seed) if config.render_format == 1 else None
    for i in range(n):
        text, image, centres = draw_captcha(renderer, one_stream or image_rng(seed, i), alphabet, config.text_length,
                                            texts[i] if texts is not None else None)  # fmt: skip
        images.append(image)
        drawn.append(text)
        layouts.append(centres)
    return images, drawn, layouts


def draw_layouts(config: DataConfig, texts: list[str], seed: int) -> list[list[float]]:
    """Where the renderer would put the characters of each text (centres as fractions of the width): the layouts
    a rendered-layout model samples at."""
    return render_captchas(config, "", len(texts), seed, texts=texts)[2]


def _to_array(img: Image.Image, model: ModelConfig) -> np.ndarray:
    img = img.convert("L" if model.channels == 1 else "RGB")
    if img.size != (model.width, model.height):
        img = img.resize((model.width, model.height), Image.BICUBIC)
    array = np.asarray(img, dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def write_folder(directory: Path, images: list[Image.Image], texts: list[str]) -> list[Path]:
    """Save images as ``<text>.png`` (``<text>_<k>.png`` when a text repeats) in ``directory``.

    A text is a file name here: one that is not a plain name (``/``, ``..``, a NUL byte, gencore.paths.safe_name)
    or that :func:`read_folder` would not read back as itself (a leading ``.`` hides the file, ``_`` starts the
    ignored suffix) is refused before anything is written.
    """
    for text in dict.fromkeys(texts):
        safe_name(text, "CAPTCHA text")
        if text.startswith(".") or "_" in text:
            why = "starts with '.' (a hidden file, skipped when read)" if text.startswith(".") else (
                "contains '_' (read back as the text before it)")  # fmt: skip
            raise DataError(f"CAPTCHA text {text!r} cannot be a file name <text>.png: it {why}")
    directory.mkdir(parents=True, exist_ok=True)
    used: dict[str, int] = {}
    paths = []
    for img, text in zip(images, texts):
        k = used.get(text, 0)
        used[text] = k + 1
        name = f"{text}.png" if k == 0 and not (directory / f"{text}.png").exists() else f"{text}_{k}.png"
        path = safe_join(directory, name, what="CAPTCHA file")
        img.save(path, format="PNG")
        paths.append(path)
    return paths


def text_of(path: Path, rule: str = "stem", keep_case: bool = False) -> str:
    """The CAPTCHA text of an image file, by ``data.label_rule``: "stem" = its stem up to the first underscore;
    "original" = the original project's ``name[:-5][-6:]`` (the file name less its last 5 characters, then the
    last 6 of those). Lower-cased unless ``keep_case`` (the original lower-cased its labels)."""
    text = path.name[:-5][-6:] if rule == "original" else path.stem.split("_")[0]
    return text if keep_case else text.lower()


def folder_files(root: Path) -> list[Path]:
    """The image files of a CAPTCHA folder, sorted; a DataError for a missing or empty folder, sub-folders holding
    images, or a file that is not an image."""
    if not root.is_dir():
        raise DataError(f"data folder not found: {root}")
    loose, subfolders = folder_layout(root)
    refuse_mixed(root, loose, subfolders)
    if subfolders:
        subs = count_summary({f"{name}/": len(images) for name, images in subfolders.items()})
        raise DataError(f"no images in {root} itself, only in sub-folders ({subs}): a CAPTCHA folder is flat "
                        "(<text>.png files); pass one of the sub-folders")  # fmt: skip
    files = []
    for path in sorted(p for p in root.iterdir() if not p.name.startswith(".")):
        if path.is_dir():
            continue
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            raise DataError(
                f"{path} is not an image (expected {', '.join(IMAGE_EXTENSIONS)}); the folder must hold only "
                "CAPTCHA images named by their text"
            )
        files.append(path)
    if not files:
        raise DataError(f"no images in {root} (expected files such as 2b827.png)")
    return files


def folder_texts(files: list[Path], data: DataConfig) -> list[str]:
    """The texts of ``files`` by the config's label rule and case; an empty text is a DataError naming the file."""
    texts = [text_of(path, data.label_rule, data.keep_case) for path in files]
    for path, text in zip(files, texts):
        if not text:
            rule = ('data.label_rule "original" (name[:-5][-6:])' if data.label_rule == "original"
                    else 'data.label_rule "stem" (the stem up to the first "_")')  # fmt: skip
            raise DataError(f"{path}: the file name gives an empty text under {rule}; a CAPTCHA image is named "
                            "by its text (2b827.png), or train with --unconditioned")  # fmt: skip
    return texts


def infer_text_settings(source: str, data: DataConfig) -> tuple[str, int, int]:
    """(vocabulary, text length, images) of a CAPTCHA folder from its file names alone: the sorted characters of
    its texts and the longest text (no image is opened)."""
    texts = folder_texts(folder_files(Path(source)), data)
    return "".join(sorted(set("".join(texts)))), max(map(len, texts)), len(texts)


def case_rule(text: str, vocabulary: str) -> str:
    """A requested text (``sample --text``) in the case the model was trained with: lower-cased for a model whose
    vocabulary holds no upper-case letter (the default lower-cases folder texts), kept otherwise."""
    return text if any(ch.isupper() for ch in vocabulary) else text.lower()


def read_folder(root: Path, model: ModelConfig, data: DataConfig | None = None) -> tuple[np.ndarray, list[str]]:
    """All images of ``root`` as uint8 (N, C, H, W) at the model's size, and their texts (from the file names, by
    ``data.label_rule`` and ``data.keep_case``; an empty text is refused for a text-aware model)."""
    data = data or DataConfig()
    files = folder_files(root)
    texts = folder_texts(files, data) if model.conditioned else [text_of(p, data.label_rule, data.keep_case)
                                                                 for p in files]  # fmt: skip
    arrays = [_to_array(load_image(path, "L" if model.channels == 1 else "RGB"), model) for path in files]
    announce(f"read {len(arrays)} images from {root} ({len(set(texts))} distinct texts, from the file names)")
    return np.stack(arrays), texts


class CaptchaData:
    """Images (uint8, N×C×H×W), their texts and, for rendered images, where each character's centre lies (a
    fraction of the width per character; None for images read from a folder).

    Rendered data that is not in the cache yet is *lazy* (:meth:`lazy`): the texts are known at once, and each
    image and layout is rendered the first time it is used. :meth:`image` and :meth:`layout` render one item;
    :attr:`images` and :attr:`layouts` render all that are still missing, and are then kept.
    """

    def __init__(self, images: torch.Tensor | None, texts: list[str], layouts: list[list[float]] | None = None):
        self._images, self.texts, self._layouts = images, list(texts), layouts
        self._renders: LazyRenders | None = None
        self._index: list[int] = []

    @classmethod
    def lazy(cls, renders: LazyRenders, index: list[int] | None = None) -> CaptchaData:
        """Items ``index`` (default: all) of ``renders``, each rendered when first used."""
        index = list(range(len(renders.texts))) if index is None else list(index)
        data = cls(None, [renders.texts[i] for i in index])
        data._renders, data._index = renders, index
        return data

    @property
    def images(self) -> torch.Tensor:
        if self._images is None:
            assert self._renders is not None
            self._renders.ensure(self._index)
            self._images = self._renders.images[self._index]
        return self._images

    @property
    def layouts(self) -> list[list[float]] | None:
        if self._layouts is None and self._renders is not None:
            self._renders.ensure(self._index)
            self._layouts = [self._renders.layout(i) for i in self._index]
        return self._layouts

    def image(self, i: int) -> torch.Tensor:
        """Image ``i`` (uint8, C×H×W), rendered now if it has not been yet."""
        if self._images is not None or self._renders is None:
            return self.images[i]
        self._renders.ensure([self._index[i]])
        return self._renders.images[self._index[i]]

    def layout(self, i: int) -> list[float] | None:
        """The layout of image ``i`` (None for images read from a folder), rendered now if need be."""
        if self._layouts is not None or self._renders is None:
            return self._layouts[i] if self._layouts is not None else None
        self._renders.ensure([self._index[i]])
        return self._renders.layout(self._index[i])

    def share_memory(self) -> None:
        """Lazy data: keep what is rendered in shared memory (:meth:`LazyRenders.share_memory`)."""
        if self._renders is not None:
            self._renders.share_memory()

    def subset(self, index: list[int]) -> CaptchaData:
        """Items ``index``; of lazy data, lazy too (nothing is rendered for it)."""
        if self._images is None and self._renders is not None:
            return CaptchaData.lazy(self._renders, [self._index[i] for i in index])
        layouts = [self._layouts[i] for i in index] if self._layouts is not None else None
        return CaptchaData(self.images[index], [self.texts[i] for i in index], layouts)


RENDER_CACHE = "hvae-captcha-renders"  # the folder under gencore.fileio.cache_dir()
_CACHE_PRODUCER = "hvae-captcha render cache"


def render_key(data: DataConfig, model: ModelConfig, alphabet: str, seed: int) -> str:
    """The hash that names a rendered set in the cache: the render format (``data.render_format``: a change to what
    a format renders needs a new format), the render settings, the alphabet, the count, the seed, the model's size
    and channels, the bytes of any font files and the versions of the captcha library and Pillow
    (what :func:`render_captchas` and the resize to the model depend on)."""
    import captcha
    import PIL

    digest = hashlib.sha256(json.dumps({
        "version": data.render_format, "captcha": getattr(captcha, "__version__", "?"), "pillow": PIL.__version__,
        "n": data.num_images, "seed": seed, "alphabet": alphabet, "text_length": data.text_length,
        "canvas": [data.render_width, data.render_height], "font_sizes": list(data.font_sizes),
        "fonts": list(data.fonts), "noise_dots": data.noise_dots, "noise_curve": data.noise_curve,
        "size": [model.channels, model.height, model.width],
    }, sort_keys=True).encode())  # fmt: skip
    for font in data.fonts:
        with contextlib.suppress(OSError):  # a missing font is _make_renderer's one-line error
            digest.update(Path(font).read_bytes())
    return digest.hexdigest()[:32]


def _cached_render(entry: Path, n: int, item: tuple[int, int, int]) -> tuple[np.ndarray, list, list] | None:
    """A rendered set from the cache entry ``entry``, or None (absent; damaged or of another shape: noted)."""
    if not (entry / "manifest.json").is_file():
        return None
    try:
        verify_dir(entry)
        tree = load_tree(entry, "render")
        images, texts, layouts = tree["images"], tree["texts"], tree["layouts"]
        if tuple(images.shape) != (n, *item) or images.dtype != torch.uint8 or len(texts) != n or len(layouts) != n:
            raise CheckpointError(f"{entry} holds {tuple(images.shape)} images, not {(n, *item)}")
    except (CheckpointError, KeyError, TypeError) as exc:
        announce(f"note: cached CAPTCHAs not used ({exc}); rendering them again")
        return None
    return images.numpy(), texts, layouts


def _save_render(entry: Path, images: torch.Tensor, texts: list[str], layouts: list[list[float]]) -> None:
    """Write a rendered set to the cache entry ``entry`` (atomically; a read-only or full cache only gets a note)."""
    try:
        with atomic_cache_dir(entry, _CACHE_PRODUCER, "render") as tmp:
            save_tree({"images": images, "texts": texts, "layouts": layouts}, tmp, "render")
    except (OSError, OutputError) as exc:
        announce(f"note: rendered CAPTCHAs not cached ({getattr(exc, 'strerror', None) or exc}: {entry})")


class LazyRenders:
    """The rendered set of a data config and seed, drawn image by image the first time each is used (image i from
    ``image_rng(seed, i)``, so the order does not matter), kept in memory, and written to the user's
    cache entry ``entry`` once every image is drawn (by the launch's main process, not by a DataLoader worker; the
    rest is drawn once half is, see :meth:`ensure`).

    The texts are drawn at once (they come first in each image's stream); a first run thus starts training after
    rendering one batch instead of the whole set (8192 images: about 16 s on one CPU thread).
    """

    def __init__(self, data: DataConfig, model: ModelConfig, alphabet: str, seed: int, entry: Path | None = None):
        if not alphabet:
            raise DataError("the alphabet to draw CAPTCHA texts from is empty")
        if data.render_format != 2:
            raise ValueError("only data.render_format 2 (a random stream per image) renders images one by one")
        n = data.num_images
        self.data, self.model, self.alphabet, self.seed, self.entry = data, model, alphabet, seed, entry
        self.texts = [draw_text(image_rng(seed, i), alphabet, data.text_length) for i in range(n)]
        self.images = torch.zeros((n, model.channels, model.height, model.width), dtype=torch.uint8)
        self.centres = torch.zeros((n, data.text_length), dtype=torch.float64)
        self.done = torch.zeros(n, dtype=torch.bool)
        self._renderer = _make_renderer(data)  # a missing font file is refused here, before training starts

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_renderer": None}  # remade where it is needed (a spawned DataLoader worker)

    def share_memory(self) -> LazyRenders:
        """Keep the images in shared memory, so that what DataLoader worker processes render is kept for all."""
        for tensor in (self.images, self.centres, self.done):
            tensor.share_memory_()
        return self

    def layout(self, i: int) -> list[float]:
        """Where image ``i``'s characters lie (centres as fractions of the width); valid once it is rendered."""
        return self.centres[i, : len(self.texts[i])].tolist()

    def ensure(self, index: Sequence[int]) -> None:
        """Render the images of ``index`` not drawn yet. Once half of the set is drawn, whether asked for in one
        call (the training images, to fit a text prior) or over training, the rest is drawn too: it costs at most
        as much again, and the whole set can then be cached for the next run. The main process caches it once all
        are drawn (here or by DataLoader workers)."""
        n = len(self.texts)
        if len(index) * 2 >= n:
            index = list(range(n))
        missing = [i for i in index if not self.done[i]] if index and not bool(self.done[index].all()) else []
        self._render(missing)
        if missing and int(self.done.sum()) * 2 >= n:
            self._render([i for i in range(n) if not self.done[i]])
        if self.entry is not None and bool(self.done.all()) and is_launch_main() and get_worker_info() is None:
            entry, self.entry = self.entry, None
            _save_render(entry, self.images.clone(), self.texts, [self.layout(i) for i in range(n)])

    def _render(self, index: list[int]) -> None:
        if index and self._renderer is None:
            self._renderer = _make_renderer(self.data)
        for i in progress(index, len(index), "rendering CAPTCHAs", disable=len(index) < 256, unit="image"):
            _, image, centres = draw_captcha(self._renderer, image_rng(self.seed, i), self.alphabet,
                                             self.data.text_length)  # fmt: skip
            self.images[i] = torch.tensor(_to_array(image, self.model))
            self.centres[i, : len(centres)] = torch.tensor(centres, dtype=torch.float64)
            self.done[i] = True


def render_data(data: DataConfig, model: ModelConfig, seed: int) -> CaptchaData:
    """The rendered images (uint8 (N, C, H, W) at the model's size), their texts and layouts: from the user's
    cache when the same settings rendered them before (:func:`render_key`), else :class:`LazyRenders` (each image
    rendered when first used; the whole set cached once drawn), or for ``data.render_format`` 1 all rendered now
    (and cached)."""
    alphabet = data.alphabet or model.vocabulary
    entry = cache_dir(RENDER_CACHE, render_key(data, model, alphabet, seed))
    cached = _cached_render(entry, data.num_images, (model.channels, model.height, model.width))
    if cached is not None:
        images, texts, layouts = cached
        return CaptchaData(torch.from_numpy(images), texts, layouts)
    if data.render_format == 1:  # one stream: image i needs every image before it, so all are drawn now
        pils, texts, layouts = render_captchas(data, alphabet, data.num_images, seed)
        images = torch.from_numpy(np.stack([_to_array(img, model) for img in pils]))
        if is_launch_main():
            _save_render(entry, images, texts, layouts)
        return CaptchaData(images, texts, layouts)
    announce(f"rendering the {data.num_images} CAPTCHAs as training first uses them (cached once all are drawn)")
    return CaptchaData.lazy(LazyRenders(data, model, alphabet, seed, entry))


def load_data(data: DataConfig, model: ModelConfig, seed: int) -> CaptchaData:
    """The configured images at the model's size: rendered (``source = "render"``, :func:`render_data`) or read
    from a folder."""
    if data.source == "render":
        result = render_data(data, model, seed)
    else:
        if model.conditioned and model.text_layout == "rendered":
            raise DataError(f"model.text_layout='rendered' needs rendered data (the renderer knows where each "
                            f"character is), and {data.source} is a folder: use rendered data with this model, or "
                            "train with --set model.text_layout=slots")  # fmt: skip
        arrays, texts = read_folder(Path(data.source), model, data)
        result = CaptchaData(torch.from_numpy(arrays), texts)
    if model.conditioned:
        known = set(model.vocabulary)
        for i, text in enumerate(result.texts):
            bad = sorted(set(text) - known)
            if bad or len(text) > model.text_length:
                where = f"{data.source}: image {i}" if data.source == "render" else f"{_nth_file(data.source, i)}"
                problem = (f"characters {''.join(bad)!r} not in model.vocabulary {model.vocabulary!r}" if bad
                           else f"text longer than model.text_length {model.text_length}")  # fmt: skip
                case = any(c.swapcase() in known for c in bad) and data.source != "render"
                hint = " (folder texts are lower-cased unless data.keep_case / --keep-case)" if case else ""
                raise DataError(
                    f"{where}: text {text!r} has {problem}{hint} (text-aware models read every image's text: "
                    "set model.vocabulary / model.text_length, or train with --unconditioned)"
                )
    return result


def _nth_file(root: str, i: int) -> str:
    files = folder_files(Path(root))
    return str(files[i]) if i < len(files) else root


def train_holdout(data: CaptchaData, fraction: float, seed: int) -> tuple[CaptchaData, CaptchaData]:
    """Deterministic split into training and held-out images."""
    train_idx, hold_idx = split_indices(len(data.texts), [1 - fraction, fraction], seed)
    if not train_idx or not hold_idx:
        raise DataError(f"too few images ({len(data.texts)}) to hold out {fraction:.0%} for evaluation")
    return data.subset(train_idx), data.subset(hold_idx)


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float in [-1, 1]."""
    return images.float() / 127.5 - 1.0


class CaptchaDataset(Dataset):
    """Items ``(image in [-1, 1], conditioning)``: the conditioning vector of the image's text (and layout) for a
    text-aware model of ``model`` (:func:`hvae_captcha.model.encode_texts`), empty (0 values) for an
    unconditioned one (``model`` None). Lazy data renders each image here, the first time it is asked for."""

    def __init__(self, data: CaptchaData, model: ModelConfig | None = None) -> None:
        self.data, self.model = data, model

    def __len__(self) -> int:
        return len(self.data.texts)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = to_float(self.data.image(i))
        if self.model is None:
            return x, torch.zeros(0)
        layouts = [self.data.layout(i)] if self.model.text_layout == "rendered" else None
        return x, encode_texts(self.model, [self.data.texts[i]], layouts)[0]
