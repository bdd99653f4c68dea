"""Privacy masks: rasterising normalised polygons and blanking the private pixels."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.config import PrivacyMask
from analytics.sources.privacy import PrivacyMasker, rasterise

FULL = PrivacyMask(polygon=((0, 0), (1, 0), (1, 1), (0, 1)))
LEFT_HALF = PrivacyMask(polygon=((0, 0), (0.5, 0), (0.5, 1), (0, 1)))
TOP_QUARTER = PrivacyMask(polygon=((0, 0), (1, 0), (1, 0.25), (0, 0.25)))


def _image(width: int = 8, height: int = 4) -> np.ndarray:
    return np.full((height, width, 3), 200, np.uint8)


@pytest.mark.parametrize(("width", "height"), [(8, 4), (7, 5), (640, 352), (1, 1)])
def test_full_frame_polygon_covers_every_pixel(width: int, height: int) -> None:
    mask = rasterise([FULL], width, height)
    assert mask.shape == (height, width)
    assert mask.dtype == np.uint8
    assert (mask == 255).all()


@pytest.mark.parametrize(("width", "height"), [(8, 4), (640, 352), (100, 10)])
def test_left_half_is_exactly_the_left_columns(width: int, height: int) -> None:
    mask = rasterise([LEFT_HALF], width, height)
    assert (mask[:, : width // 2] == 255).all()
    # the column whose edge the polygon touches may be blanked too (privacy errs on blanking more)
    assert (mask[:, width // 2 + 1:] == 0).all()


def test_polygons_are_united() -> None:
    mask = rasterise([LEFT_HALF, TOP_QUARTER], 16, 16)
    assert (mask[:, :8] == 255).all()
    assert (mask[:4, :] == 255).all()
    assert (mask[5:, 9:] == 0).all()  # a pixel touching a polygon edge may be blanked too (err on privacy)


def test_no_polygon_gives_an_empty_mask() -> None:
    assert not rasterise([], 5, 3).any()


@pytest.mark.parametrize(("width", "height"), [(0, 4), (4, -1)])
def test_bad_size_names_the_size(width: int, height: int) -> None:
    with pytest.raises(ValueError, match=f"{width}x{height}"):
        rasterise([FULL], width, height)


def test_triangle_blanks_inside_and_keeps_outside() -> None:
    tri = PrivacyMask(polygon=((0.1, 0.1), (0.9, 0.1), (0.1, 0.9)))
    out = PrivacyMasker([tri]).apply(_image(100, 100))
    assert (out[20, 20] == 0).all()  # well inside
    assert (out[80, 80] == 200).all()  # well outside (beyond the hypotenuse)
    assert (out[5, 50] == 200).all()  # above the top edge


def test_apply_returns_a_new_array_and_leaves_the_input_alone() -> None:
    image = _image()
    out = PrivacyMasker([LEFT_HALF]).apply(image)
    assert out is not image
    assert (image == 200).all()
    assert (out[:, :4] == 0).all()
    assert (out[:, 5:] == 200).all()


def test_apply_inplace_blanks_the_given_array() -> None:
    image = _image()
    out = PrivacyMasker([LEFT_HALF]).apply(image, inplace=True)
    assert out is image
    assert (image[:, :4] == 0).all()


def test_no_masks_is_a_no_op() -> None:
    masker = PrivacyMasker([])
    image = _image()
    assert not masker
    assert masker.apply(image) is image


def test_grayscale_images_are_masked_too() -> None:
    out = PrivacyMasker([LEFT_HALF]).apply(np.full((4, 8), 9, np.uint8))
    assert (out[:, :4] == 0).all() and (out[:, 5:] == 9).all()


def test_bad_image_shape_names_the_shape() -> None:
    with pytest.raises(ValueError, match=r"\(8,\)"):
        PrivacyMasker([LEFT_HALF]).apply(np.zeros(8, np.uint8))


def test_masks_are_cached_per_size_and_read_only() -> None:
    masker = PrivacyMasker([LEFT_HALF])
    small = masker.mask_for(8, 4)
    assert masker.mask_for(8, 4) is small
    big = masker.mask_for(16, 8)
    assert big.shape == (8, 16)
    assert not small.flags.writeable
    out = masker.apply(_image(16, 8))
    assert (out[:, :8] == 0).all() and (out[:, 9:] == 200).all()
