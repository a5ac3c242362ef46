"""Bad input across the stages, through the CLI: exit status 2, ONE stderr line naming the file or value and
the problem, no traceback, and no partial output (the --out folder absent, no *.partial file anywhere).

Each case builds its inputs in a fresh folder and returns the command line and the text the message must
name. Cases that run the models (infer) use the session's tiny detector and classifier. The README's
"Troubleshooting" section lists the same cases with what each gives.
"""

import gzip
import json
import pathlib
import re
import shutil

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from tables import detection, empty, table

from umnist import postprocess, yolo_compat
from umnist.cli import main

slow = pytest.mark.slow


def jpeg_bytes(side: int = 64) -> bytes:
    image = (np.random.default_rng(0).random((side, side)) * 255).astype(np.uint8)
    return cv2.imencode(".jpg", image)[1].tobytes()


def good_scene(get) -> pathlib.Path:
    return sorted((get("tiny_data") / "detection" / "images" / "val").glob("*.jpg"))[0]


def detector_weights(get) -> pathlib.Path:
    return get("tiny_detector") / "weights" / "best.pt"


def classifier_weights(get) -> pathlib.Path:
    return get("tiny_classifier")[0] / "best.pt"


def infer_args(tmp, get, images=None, detector=None, classifier=None) -> list[str]:
    """`umnist infer` with the tiny models on `images` (default: a folder of one good scene), policy fail."""
    if images is None:
        images = tmp / "images"
        images.mkdir()
        shutil.copy(good_scene(get), images / "good.jpeg")
    return ["infer", "--images", str(images), "--detector", str(detector or detector_weights(get)),
            "--classifier", str(classifier or classifier_weights(get)), "--out", str(tmp / "out"),
            "--bad-images", "fail", "--no-progress"]


def bad_image(name: str, write):
    """A folder with a good scene and the bad file `name`, written by `write(path)`."""
    def build(tmp, get):
        images = tmp / "images"
        images.mkdir()
        shutil.copy(good_scene(get), images / "a_good.jpeg")
        write(images / name)
        return infer_args(tmp, get, images), str(images / name)
    return build


def random_after_header(path):
    data = jpeg_bytes()
    path.write_bytes(data[:20] + np.random.default_rng(1).integers(0, 256, len(data) - 20, np.uint8).tobytes())


def bad_weights(which, write):
    """infer with a bad `which` ("detector" or "classifier") weights file written by `write`."""
    def build(tmp, get):
        path = tmp / f"{which}.pt"
        write(path, get)
        return infer_args(tmp, get, **{which: path}), str(path)
    return build


def half_of(source):
    def write(path, get):
        data = source(get).read_bytes()
        path.write_bytes(data[: len(data) // 2])
    return write


def three_class_detector(path, get):
    yolo_compat.prepare()
    from yolov5.models.yolo import Model

    ckpt = torch.load(detector_weights(get), map_location="cpu", weights_only=False)
    ckpt["model"] = Model(ckpt["model"].yaml, nc=3).half()
    torch.save(ckpt, path)


def pickled_objects(path, get):
    torch.save({"state_dict": {"w": torch.zeros(2)}, "where": pathlib.PurePosixPath("/etc")}, path)


def predictions(tmp) -> pathlib.Path:
    """A postprocess output folder for the images a (sum 3) and b (no digit)."""
    postprocess.run(table(detection("a", (0, 0, 10, 10), 3), empty("b")), tmp / "pred")
    return tmp / "pred"


def labels(text: str):
    """`umnist score` of the a/b predictions against a train.csv holding `text`."""
    def build(tmp, get):
        path = tmp / "train.csv"
        path.write_text(text)
        return ["score", "--predictions", str(predictions(tmp)), "--labels", str(path), "--out",
                str(tmp / "out")], str(path)
    return build


def detections_file(write):
    def build(tmp, get):
        path = tmp / "detections.parquet"
        write(path)
        return ["postprocess", "--detections", str(path), "--out", str(tmp / "out")], str(path)
    return build


def synth(*flags, named: str, profile_text: str | None = None):
    """`umnist synth` with `flags` (and a profile file holding `profile_text`); the message names `named`."""
    def build(tmp, get):
        argv = ["synth", "--out", str(tmp / "out"), "--mnist", str(get("mnist_dir")), "--workers", "1",
                "--no-progress", *flags]
        if profile_text is not None:
            (tmp / "profile.yaml").write_text(profile_text)
            argv += ["--profile", str(tmp / "profile.yaml")]
        return argv, named
    return build


def command(*argv, named: str):
    """Any command; "{tmp}" in an argument is the case's folder (nothing there needs to exist)."""
    def build(tmp, get):
        return [a.format(tmp=tmp) for a in argv], named.format(tmp=tmp)
    return build


def damaged_mnist(damage, command_name: str):
    """The real test digits with the images file damaged by `damage(raw bytes)`."""
    def build(tmp, get):
        folder = tmp / "mnist"
        folder.mkdir()
        raw = gzip.open(get("mnist_dir") / "t10k-images-idx3-ubyte.gz").read()
        (folder / "t10k-images-idx3-ubyte").write_bytes(damage(raw))
        shutil.copy(get("mnist_dir") / "t10k-labels-idx1-ubyte.gz", folder)
        if command_name == "mnist":
            return ["mnist", "--mnist", str(folder), "--splits", "test"], "t10k-images-idx3-ubyte"
        return ["synth", "--out", str(tmp / "out"), "--mnist", str(folder), "--workers", "1",
                "--no-progress"], "t10k-images-idx3-ubyte"
    return build


def empty_folder(tmp, get):
    (tmp / "images").mkdir()
    return infer_args(tmp, get, tmp / "images", tmp / "unused.pt", tmp / "unused.pt"), str(tmp / "images")


def init_weights_with_objects(tmp, get):
    path = tmp / "init.pt"
    pickled_objects(path, get)
    return ["train-classifier", "--crops", str(get("tiny_crops")), "--out", str(tmp / "out"),
            "--init-weights", str(path)], str(path)


def detector_start_weights_text(tmp, get):
    path = tmp / "start.pt"
    path.write_text("not weights\n")
    return ["train-detector", "--data", str(get("tiny_detector_data")), "--out", str(tmp / "out"),
            "--weights", str(path)], str(path)


CASES = [
    # images (infer, bad_images=fail; the skip policy is tested below)
    pytest.param(bad_image("cut.jpeg", lambda p: p.write_bytes(jpeg_bytes()[:-300])), "truncated JPEG",
                 id="image-truncated-jpeg", marks=slow),
    pytest.param(bad_image("noise.jpeg", random_after_header), "not a readable image",
                 id="image-corrupt-jpeg", marks=slow),
    pytest.param(bad_image("cut.png", lambda p: p.write_bytes(cv2.imencode(".png", np.eye(64, dtype=np.uint8))[1]
                                                              .tobytes()[:80])),
                 "not a readable image", id="image-truncated-png", marks=slow),
    pytest.param(bad_image("zero.jpeg", lambda p: p.write_bytes(b"")), "empty file", id="image-zero-bytes",
                 marks=slow),
    pytest.param(bad_image("notes.jpeg", lambda p: p.write_text("id,digit_sum\n")), "not a readable image",
                 id="image-text-named-jpeg", marks=slow),
    pytest.param(bad_image("dot.png", lambda p: cv2.imwrite(str(p), np.zeros((4, 6), np.uint8))),
                 "6x4 px is too small", id="image-tiny-4px", marks=slow),
    pytest.param(empty_folder, "no images", id="images-empty-folder"),
    pytest.param(command("infer", "--images", "{tmp}/nowhere", "--detector", "d.pt", "--classifier", "c.pt",
                         "--out", "{tmp}/out", named="{tmp}/nowhere"), "no such file", id="images-no-folder"),
    # weights
    pytest.param(bad_weights("detector", lambda p, get: p.write_text("not weights\n")), "not a readable PyTorch",
                 id="detector-text-file", marks=slow),
    pytest.param(bad_weights("detector", half_of(detector_weights)), "truncated or corrupt", id="detector-truncated",
                 marks=slow),
    pytest.param(bad_weights("detector", three_class_detector), "3 classes; umnist detects 10", id="detector-3-classes",
                 marks=slow),
    pytest.param(bad_weights("detector", lambda p, get: shutil.copy(classifier_weights(get), p)),
                 "not a YOLOv5 checkpoint", id="detector-given-classifier-file", marks=slow),
    pytest.param(bad_weights("classifier", pickled_objects), "refused, it holds pickled objects",
                 id="classifier-needs-pickle", marks=slow),
    pytest.param(bad_weights("classifier", lambda p, get: shutil.copy(detector_weights(get), p)),
                 "refused, it holds pickled objects", id="classifier-given-detector-file", marks=slow),
    pytest.param(bad_weights("classifier", half_of(classifier_weights)), "truncated", id="classifier-truncated",
                 marks=slow),
    pytest.param(bad_weights("classifier", lambda p, get: None), "weights file not found", id="classifier-missing",
                 marks=slow),
    pytest.param(init_weights_with_objects, "refused, it holds pickled objects", id="init-weights-need-pickle"),
    pytest.param(detector_start_weights_text, "not a readable PyTorch", id="detector-start-weights-text"),
    # tables
    pytest.param(labels("id,digit_sum\na,3\n"), "not in", id="labels-missing-id"),
    pytest.param(labels("id,digit_sum\na,3\nb,0\nc,5\n"), "have no prediction", id="labels-extra-id"),
    pytest.param(labels("id,digit_sum\na,3\nb,0\na,3\n"), "duplicate id", id="labels-duplicate-id"),
    pytest.param(labels("id,digit_sum\na,3.5\nb,0\n"), "'3.5' is not an integer", id="labels-non-integer-sum"),
    pytest.param(labels("id,digit_sum\na,28\nb,0\n"), "28 is outside 0..27", id="labels-sum-above-27"),
    pytest.param(labels("id,digit_sum\na,-1\nb,0\n"), "-1 is outside 0..27", id="labels-negative-sum"),
    pytest.param(labels("image,sum\na,3\nb,0\n"), "header must be 'id,digit_sum'", id="labels-wrong-header"),
    pytest.param(labels(""), "an empty file", id="labels-empty-file"),
    pytest.param(labels("id,digit_sum\na,3,1\nb,0\n"), "line 2 has 3 field", id="labels-extra-field"),
    pytest.param(detections_file(lambda p: p.write_text("x")), "not a readable Parquet", id="detections-not-parquet"),
    pytest.param(detections_file(lambda p: pd.DataFrame({"image_id": ["a"]}).to_parquet(p)), "missing column",
                 id="detections-missing-columns"),
    # configs: rejected before any work starts
    pytest.param(synth(named="scene_sise", profile_text="synth:\n  scene_sise: 100\n"), "unknown key",
                 id="config-unknown-key"),
    pytest.param(synth(named="colour", profile_text="colour:\n  x: 1\n"), "unknown section",
                 id="config-unknown-section"),
    pytest.param(synth(named="profile.yaml", profile_text="synth: [\n"), "not valid YAML", id="config-not-yaml"),
    pytest.param(synth("--profile", "nosuch", named="nosuch"), "unknown profile", id="config-unknown-profile"),
    pytest.param(synth("--scenes-train", "many", named="scenes_train='many'"), "is not int",
                 id="config-wrong-type"),
    pytest.param(synth("--scenes-train", "-5", named="scenes_train=-5"), "must not be negative",
                 id="config-negative-count"),
    pytest.param(synth("--digit-min-px", "300", named="digit_min_px=300"), "larger than the largest digit side",
                 id="config-digit-larger-than-scene"),
    pytest.param(synth("--cell-frac", "[0.1, 1.5]", named="cell_frac=[0.1, 1.5]"), "min <= max <= 1",
                 id="config-digit-fraction-above-1"),
    pytest.param(command("train-detector", "--data", "{tmp}/data", "--out", "{tmp}/out", "--conf", "1.5",
                         named="conf=1.5"), "within 0..1", id="config-threshold-above-1"),
    pytest.param(command("train-classifier", "--crops", "{tmp}/crops", "--out", "{tmp}/out", "--epochs", "0",
                         named="epochs=0"), "must be >= 1", id="config-zero-epochs"),
    pytest.param(command("postprocess", "--detections", "{tmp}/d.parquet", "--out", "{tmp}/out", "--min-prob",
                         "-0.1", named="min_prob=-0.1"), r"must be in \[0, 1\]", id="config-threshold-below-0"),
    pytest.param(command("infer", "--images", "{tmp}", "--detector", "d.pt", "--classifier", "c.pt", "--out",
                         "{tmp}/out", "--part", "2", "--parts", "2", named="part=2"), "within 0..1",
                 id="config-part-out-of-range"),
    # MNIST files
    pytest.param(damaged_mnist(lambda raw: b"\x00\x00\x08\x01" + raw[4:], "mnist"), "wrong magic number",
                 id="mnist-wrong-magic"),
    pytest.param(damaged_mnist(lambda raw: raw[:-100], "mnist"), "truncated", id="mnist-truncated"),
    pytest.param(damaged_mnist(lambda raw: raw[:-100], "synth"), "truncated", id="mnist-truncated-synth"),
    pytest.param(command("synth", "--out", "{tmp}/out", "--mnist", "{tmp}", named="t10k-images-idx3-ubyte"),
                 "missing", id="mnist-missing-files"),
    # training inputs
    pytest.param(command("train-classifier", "--crops", "{tmp}", "--out", "{tmp}/out", named="{tmp}"),
                 "crop index not found", id="crops-not-a-crop-set"),
    pytest.param(command("train-detector", "--data", "{tmp}", "--out", "{tmp}/out", named="{tmp}"),
                 "no detection/images", id="detector-data-not-a-synth-output"),
]


@pytest.mark.parametrize("build, problem", CASES)
def test_bad_input_is_one_clear_line_and_leaves_nothing(build, problem, tmp_path, request, capfd):
    argv, named = build(tmp_path, request.getfixturevalue)
    capfd.readouterr()
    assert main(argv) == 2
    err = capfd.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert err.startswith(f"umnist {argv[0]}: error: ") and "Traceback" not in err
    assert named in err and re.search(problem, err), err
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.rglob("*.partial"))


def write_scene_variants(scene: np.ndarray, folder: pathlib.Path) -> None:
    """The same grey scene as colour JPEG, RGBA and 16-bit PNG, plus a non-square and a small version."""
    folder.mkdir()
    cv2.imwrite(str(folder / "grey.png"), scene)
    cv2.imwrite(str(folder / "colour.jpeg"), cv2.merge([scene, scene // 2, 255 - scene]))
    rgba = cv2.cvtColor(scene, cv2.COLOR_GRAY2BGRA)
    rgba[..., 3] = 128
    cv2.imwrite(str(folder / "rgba.png"), rgba)
    cv2.imwrite(str(folder / "deep.png"), scene.astype(np.uint16) * 257)
    cv2.imwrite(str(folder / "wide.jpeg"), scene[: scene.shape[0] // 2])
    cv2.imwrite(str(folder / "small.png"), cv2.resize(scene, (24, 24), interpolation=cv2.INTER_AREA))


@slow
def test_colour_rgba_16bit_non_square_and_small_images_are_converted(tiny_data, tiny_detector, tiny_classifier,
                                                                    tmp_path, request):
    scene = cv2.imread(str(good_scene(request.getfixturevalue)), cv2.IMREAD_GRAYSCALE)
    write_scene_variants(scene, tmp_path / "images")
    assert main(infer_args(tmp_path, request.getfixturevalue, tmp_path / "images")) == 0
    found = pd.read_parquet(tmp_path / "out" / "detections.parquet")
    assert sorted(found["image_id"].unique()) == ["colour", "deep", "grey", "rgba", "small", "wide"]
    assert (found["error"] == "").all()
    sizes = found.groupby("image_id")[["width", "height"]].first()
    assert tuple(sizes.loc["wide"]) == (scene.shape[1], scene.shape[0] // 2)
    assert tuple(sizes.loc["small"]) == (24, 24)

    def boxes(image_id):
        return found.loc[found["image_id"] == image_id, ["x1", "y1", "x2", "y2", "cls_digit"]].to_numpy()

    # RGBA with equal colour channels and 16-bit = 257 x the grey values convert back to the very same pixels
    np.testing.assert_array_equal(boxes("rgba"), boxes("grey"))
    np.testing.assert_array_equal(boxes("deep"), boxes("grey"))


@slow
def test_skipped_images_are_recorded_and_listed_by_postprocess_and_score(tiny_data, tiny_detector,
                                                                          tiny_classifier, tmp_path, request,
                                                                          capsys):
    """Policy bad_images=skip (the default): the run goes on; the unreadable images get an empty row with the
    reason in `error` (sum 0), and every later stage names them."""
    get = request.getfixturevalue
    images = tmp_path / "images"
    images.mkdir()
    for scene in sorted((tiny_data / "detection" / "images" / "val").glob("*.jpg"))[:2]:
        shutil.copy(scene, images / scene.name)
    (images / "zero.jpeg").write_bytes(b"")
    (images / "cut.jpeg").write_bytes(jpeg_bytes()[:-300])
    out = tmp_path / "out"
    argv = infer_args(tmp_path, get, images)
    assert main([*argv[:-3], "--no-progress"]) == 0  # without --bad-images fail
    printed = capsys.readouterr()
    assert printed.err.count("umnist infer: skipped") == 2 and "cut.jpeg: truncated JPEG" in printed.err
    assert "2 unreadable image(s) skipped" in printed.out
    found = pd.read_parquet(out / "detections.parquet").set_index("image_id")
    assert found.loc["zero", "error"].endswith("zero.jpeg: empty file") and found.loc["zero", "empty"]
    assert found.loc["cut", "empty"] and found.loc[["val_000000", "val_000001"], "error"].eq("").all()

    assert main(["postprocess", "--detections", str(out / "detections.parquet"), "--out", str(out)]) == 0
    assert "2 image(s) were unreadable, skipped by infer and given sum 0: cut, zero" in capsys.readouterr().err
    submission = pd.read_csv(out / "submission.csv").set_index("id")["digit_sum"]
    assert submission["cut"] == submission["zero"] == 0
    (tmp_path / "train.csv").write_text("id,digit_sum\n" + "".join(f"{i},{s}\n" for i, s in submission.items()))
    assert main(["score", "--predictions", str(out), "--labels", str(tmp_path / "train.csv"), "--out",
                 str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert sorted(metrics["skipped_images"]) == ["cut", "zero"]
    report = (out / "report.html").read_text()
    assert "Unreadable images skipped by infer (predicted sum 0): 2" in report and "zero.jpeg: empty file" in report
