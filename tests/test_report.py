import base64
import html
import re

import cv2
import numpy as np
import pytest
from tables import detection, empty, table

from umnist import postprocess, score
from umnist.cli import main

ODD_ID = "bad_<b>&x'"
# Ids hold "_", which base64 never does, so finding an id in the HTML cannot be an accident of the images.
SCENES = table(
    detection("bad_nested", (0, 0, 300, 300), 5), detection("bad_nested", (50, 50, 100, 100), 1),
    detection("bad_nested", (350, 0, 500, 150), 7, prob=0.2),
    detection("bad_png", (100, 100, 200, 200), 3),
    detection("bad_missing", (100, 100, 200, 200), 2),
    detection(ODD_ID, (100, 100, 200, 200), 1),
    detection("ok_one", (100, 100, 200, 200), 4),
    empty("ok_empty"),
)
LABELS = {"bad_nested": 6, "bad_png": 4, "bad_missing": 1, ODD_ID: 2, "ok_one": 4, "ok_empty": 0}
WRONG = sorted(k for k in LABELS if k.startswith("bad_"))


@pytest.fixture
def scored(tmp_path):
    """(predictions dir, labels CSV, images dir) with real 600x600 images written by OpenCV."""
    postprocess.run(SCENES, tmp_path / "pred")
    (tmp_path / "train.csv").write_text("id,digit_sum\n" + "".join(f"{k},{v}\n" for k, v in LABELS.items()))
    images = tmp_path / "images"
    images.mkdir()
    picture = np.full((600, 600), 128, np.uint8)
    cv2.rectangle(picture, (100, 100), (200, 200), 255, -1)
    for image_id in ("bad_nested", ODD_ID, "ok_one", "ok_empty"):
        assert cv2.imwrite(str(images / f"{image_id}.jpeg"), picture)
    assert cv2.imwrite(str(images / "bad_png.png"), picture)
    return tmp_path / "pred", tmp_path / "train.csv", images


def embedded_images(page: str) -> dict[str, np.ndarray]:
    pictures = {}
    for alt, jpeg in re.findall(r'<img alt="([^"]*)" src="data:image/jpeg;base64,([^"]+)">', page):
        data = np.frombuffer(base64.b64decode(jpeg), np.uint8)
        pictures[html.unescape(alt)] = cv2.imdecode(data, cv2.IMREAD_COLOR)
    return pictures


def test_gallery_shows_the_wrong_images_only(scored, tmp_path):
    predictions, labels, images = scored
    score.run(predictions, labels, tmp_path / "out", images=images)
    page = (tmp_path / "out" / "report.html").read_text()
    assert "Wrong images: 4" in page and "left out" not in page
    for image_id in WRONG:
        assert html.escape(image_id) in page
    assert "ok_one" not in page and "ok_empty" not in page
    assert "no readable image bad_missing" in page
    pictures = embedded_images(page)
    assert sorted(pictures) == sorted(set(WRONG) - {"bad_missing"})
    assert all(p.shape == (512, 512, 3) for p in pictures.values())
    b, g, r = (pictures["bad_nested"][..., c].astype(int) for c in range(3))
    assert ((g - r > 60) & (g - b > 60)).sum() > 100                   # kept boxes: green
    assert ((r - g > 50) & (abs(g - b) < 30)).sum() > 20               # dropped below the floor: red
    assert ((r - g > 40) & (g - b > 60)).sum() > 20                    # dropped as nested: orange
    assert "true 6, predicted 5 (detector 13, re-classified 13)" in page
    assert "7 (0.20, detector 7 at 0.80) low_prob" in page and "nested" in page


def test_text_is_escaped(scored, tmp_path):
    predictions, labels, _ = scored
    score.run(predictions, labels, tmp_path / "out")
    page = (tmp_path / "out" / "report.html").read_text()
    assert ODD_ID not in page and "bad_&lt;b&gt;&amp;x&#x27;" in page
    assert "<b>&x" not in page and "<img" not in page                 # no images without an images folder


def test_gallery_limit(scored, tmp_path):
    predictions, labels, images = scored
    score.run(predictions, labels, tmp_path / "out", images=images, gallery_limit=2)
    page = (tmp_path / "out" / "report.html").read_text()
    assert "2 more wrong image(s) left out (gallery limit 2" in page
    assert html.escape(WRONG[0]) in page and WRONG[1] in page
    assert WRONG[2] not in page and WRONG[3] not in page


def test_report_tables(scored, tmp_path):
    predictions, labels, _ = scored
    (tmp_path / "boxes.csv").write_text("id,digit,x1,y1,x2,y2\nbad_png,4,100,100,200,200\n")
    assert main(["score", "--predictions", str(predictions), "--labels", str(labels), "--out",
                 str(tmp_path / "out"), "--boxes", str(tmp_path / "boxes.csv")]) == 0
    page = (tmp_path / "out" / "report.html").read_text()
    assert "<td>postprocessed</td><td>2</td><td>6</td><td>33.33 %</td>" in page
    assert "Boxes (IoU ≥ 0.5, 1 true ones)" in page
    assert "<tr><th>6</th>" + "<td class=\"\"></td>" * 5 + '<td class="off">1</td>' in page   # true 6 -> 5
    assert len(re.findall(r"<tr><th>\d+</th><td", page)) == 28                          # confusion rows


@pytest.mark.parametrize("with_boxes", [True, False])
def test_gallery_draws_the_missed_digits(scored, tmp_path, with_boxes):
    """bad_png: a "3" found (true sum 4, predicted 3); with boxes, its "1" at (400, 400, 450, 500) was missed."""
    predictions, labels, images = scored
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("id,digit,x1,y1,x2,y2\nbad_png,3,100,100,200,200\nbad_png,1,400,400,450,500\n")
    score.run(predictions, labels, tmp_path / "out", boxes=boxes if with_boxes else None, images=images)
    page = (tmp_path / "out" / "report.html").read_text()
    assert ("missed true digit(s): 1 at (400, 400, 450, 500)" in page) == with_boxes
    assert ("missed true digit (no detector box matches it)" in page) == with_boxes      # the legend
    assert ("<h2>Why 4 sums are wrong</h2>" in page) == with_boxes
    if with_boxes:  # bad_png's "1" is its only problem; the others, without true boxes, hold no digit
        assert "<td>a true digit no detector box found</td><td>1</td><td>1</td><td>1</td>" in page
    assert "kept digit" in page and "dropped: nested" in page
    b, g, r = (embedded_images(page)["bad_png"][..., c].astype(int) for c in range(3))
    magenta = (r - g > 80) & (b - g > 80)
    assert (magenta.sum() > 50) == with_boxes
    if with_boxes:
        ys, xs = np.nonzero(magenta)
        scale = 512 / 600
        assert 400 * scale - 15 <= xs.min() and xs.max() <= 450 * scale + 15 and ys.max() <= 500 * scale + 15
