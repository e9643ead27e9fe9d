"""The explorers with the installed ipywidgets: 8.x in the development venv, 7.7.x (Colab's) in
`make test-colab`, which runs this file there too."""

import datetime
import io

import numpy as np
import pytest
import torch

ipywidgets = pytest.importorskip("ipywidgets")


def _png(seed: int) -> bytes:
    from PIL import Image

    array = np.random.default_rng(seed).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_uploaded_files_reads_both_ipywidgets_formats():
    from agop_book.ch03_pretrained import uploaded_files

    seven = {"a.png": {"metadata": {"name": "a.png", "type": "image/png"}, "content": b"xy"}}
    eight = ({"name": "b.png", "type": "image/png", "size": 2, "content": memoryview(b"zw")},)
    assert uploaded_files(seven) == [("a.png", b"xy")]
    assert uploaded_files(eight) == [("b.png", b"zw")]
    assert uploaded_files(()) == [] and uploaded_files({}) == []


def test_pretrained_explorer_takes_an_upload_in_this_ipywidgets():
    """Builds the explorer on a tiny CNN and uploads a picture the way this ipywidgets' front
    end reports it; the new image is preprocessed, offered and selected."""
    from agop_book import ch03_pretrained as widgets

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(4, 3),
    ).eval()
    box = widgets.pretrained_explorer(
        {"tiny": model}, {"noise": torch.rand(3, 16, 16)}, size=16, sketch=2
    )
    upload = box.children[1].children[1]
    image_box = box.children[1].children[0]
    assert isinstance(upload, ipywidgets.FileUpload)
    content = _png(1)
    if int(ipywidgets.__version__.split(".")[0]) >= 8:
        upload.value = (
            {
                "name": "mine.png",
                "type": "image/png",
                "size": len(content),
                "content": memoryview(content),
                "last_modified": datetime.datetime.now(),
            },
        )
    else:  # 7.x: the front end sends metadata and data, then bumps a counter; value follows
        upload.metadata = [
            {"name": "mine.png", "type": "image/png", "size": len(content), "lastModified": 0}
        ]
        upload.data = [content]
        upload._counter += 1
        assert list(upload.value) == ["mine.png"]
    assert image_box.value == "mine.png" and "mine.png" in image_box.options
