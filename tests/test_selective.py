"""Selective compression (SC): label maps, preservation masks, the sc file format, training data and the CLI."""

import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfgc.data import labels
from tfgc.codec import api, bitstream, entropy, gc, sc
from tfgc.config import preset
from tfgc.errors import ConfigError, DataError, FormatError, ImageError, ModelError, TfgcError
from tfgc.models.registry import build_model
from tfgc.models.sc import sample_masks
from tfgc.models.store import save_model
from tfgc.data.scenes import CAR, PERSON, procedural_scene, write_scenes

HEIGHT, WIDTH = 72, 104  # not multiples of 16: the latent grid is 5 x 7 and the image is padded


@pytest.fixture(scope="module")
def sc_model():
    tf.keras.utils.set_random_seed(3)
    return build_model(preset("sc-tiny"), for_training=False)


@pytest.fixture(scope="module")
def scene():
    return procedural_scene(HEIGHT, WIDTH, np.random.default_rng(5))


def _classes(ids):
    return labels.to_classes(ids, "cityscapes", 20)


def _sections(data):
    header, payload = bitstream.unpack(data)
    return header, payload, bitstream.unpack_selective(payload)


# ---- label sets and masks -----------------------------------------------------------------------------------------
def test_cityscapes_label_ids_map_to_train_classes_and_void():
    ids = np.array([[7, 26, 24, 23], [0, 1, 33, 6]], np.uint8)
    assert _classes(ids).tolist() == [[0, 13, 11, 10], [19, 19, 18, 19]]


def test_label_ids_outside_the_label_set_are_refused():
    with pytest.raises(TfgcError, match="id 34, outside the cityscapes label set"):
        _classes(np.array([[7, 34]], np.uint8))
    with pytest.raises(TfgcError, match="outside the identity label set"):
        labels.to_classes(np.array([[0, 5]]), "identity", 5)


def test_masks_reduce_to_latent_cells_that_any_preserved_pixel_touches():
    pixels = np.zeros((40, 40), bool)
    pixels[17, 33] = True  # cell (1, 2)
    mask = labels.reduce_to_latent(pixels)
    assert mask.shape == (3, 3) and mask.sum() == 1 and mask[1, 2] == 1
    assert labels.expand_to_pixels(mask, 40, 40)[16:32, 32:40].all()


def test_box_masks_cover_the_asked_fraction():
    assert labels.box_mask(160, 320, 0).sum() == 0
    assert labels.box_mask(160, 320, 1).all()
    half = labels.box_mask(160, 320, 0.5)
    assert abs(half.mean() - 0.5) < 0.06


def test_a_mask_image_that_is_not_binary_is_refused(tmp_path):
    values = np.zeros((HEIGHT, WIDTH), np.uint8)
    values[:10], values[10:20] = 128, 255
    Image.fromarray(values).save(tmp_path / "mask.png")
    with pytest.raises(ImageError, match="not binary: it holds 3 distinct values"):
        labels.mask_from_image(tmp_path / "mask.png", (HEIGHT, WIDTH))


def test_mask_images_at_image_or_latent_size():
    pixels = np.zeros((HEIGHT, WIDTH), np.uint8)
    pixels[:16, :16] = 255
    assert labels.mask_from_image(pixels, (HEIGHT, WIDTH)).sum() == 1
    grid = np.eye(5, 7, dtype=np.uint8)
    assert (labels.mask_from_image(grid, (HEIGHT, WIDTH)) == grid).all()
    with pytest.raises(ImageError, match="must be the image's size"):
        labels.mask_from_image(np.zeros((10, 10), np.uint8), (HEIGHT, WIDTH))


def test_class_names_and_numbers():
    assert labels.class_ids(["person", " Car", "0"], "cityscapes", 0) == [11, 13, 0]
    with pytest.raises(TfgcError, match="unknown class 'pedestrian'"):
        labels.class_ids(["pedestrian"], "cityscapes", 0)


# ---- the sc file --------------------------------------------------------------------------------------------------
def test_label_map_coders_round_trip_exactly(rng):
    classes = rng.integers(0, 20, (HEIGHT, WIDTH)).astype(np.uint8)
    classes[:30] = 4  # some structure, so the coders differ
    coders = ["png", "webp"] + (["jxl"] if sc._jxl_available() else [])
    for coder in coders:
        image = Image.fromarray(classes, "L")
        import io

        buffer = io.BytesIO()
        image.save(buffer, **{"png": dict(format="PNG"), "webp": dict(format="WEBP", lossless=True),
                              "jxl": dict(format="JXL", lossless=True)}[coder])
        decoded = sc.decode_label_map(coder, buffer.getvalue(), HEIGHT, WIDTH, 20)
        assert decoded.dtype == np.uint8 and (decoded == classes).all(), coder
    coder, data = sc.encode_label_map(classes)
    assert (sc.decode_label_map(coder, data, HEIGHT, WIDTH, 20) == classes).all()


def test_mask_coding_round_trips_and_costs_nothing_for_none_or_all(rng):
    for mask in (np.zeros((5, 7)), np.ones((5, 7)), rng.integers(0, 2, (5, 7)), labels.box_mask(640, 960, 0.3)):
        mask = mask.astype(np.uint8)
        kind, data = sc.encode_mask(mask)
        assert (sc.decode_mask(kind, data, *mask.shape) == mask).all()
        if mask.all() or not mask.any():
            assert data == b""
    kind, data = sc.encode_mask(labels.box_mask(640, 960, 0.3))
    assert kind == bitstream.MASK_DEFLATE and len(data) < 40 * 60 / 8


def test_label_map_and_mask_round_trip_through_the_file(sc_model, scene):
    image, ids = scene
    mask = np.zeros((5, 7), np.uint8)
    mask[1:3, 2:6] = 1
    data = api.encode(image, sc_model, semantics=ids, preserve=mask).data
    header, payload = bitstream.unpack(data)
    classes, decoded_mask, _ = api.read_selective(header, payload, 20)
    assert (classes == _classes(ids)).all() and (decoded_mask == mask).all()


def test_no_latent_bits_outside_the_mask_and_bits_grow_with_the_preserved_area(sc_model, scene):
    image, ids = scene
    results = [api.encode(image, sc_model, semantics=ids, preserve=labels.box_mask(HEIGHT, WIDTH, f))
               for f in (0, 0.3, 0.6, 1)]
    latent_bytes = [len(_sections(r.data)[2].latents) for r in results]
    assert latent_bytes[0] == 0 and results[0].parts["latents"] == 0 and results[0].symbols == 0
    assert latent_bytes == sorted(latent_bytes) and len(set(latent_bytes)) == 4
    assert [r.symbols for r in results] == [int(labels.box_mask(HEIGHT, WIDTH, f).sum()) * 4
                                           for f in (0, 0.3, 0.6, 1)]
    for r in results:  # the itemized parts are the whole file
        assert sum(r.parts.values()) == len(r.data)
        assert r.bpp == pytest.approx(8 * len(r.data) / (HEIGHT * WIDTH))


def test_stored_latents_are_the_symbols_of_the_preserved_cells_only(sc_model, scene):
    image, ids = scene
    classes = _classes(ids)
    mask = labels.mask_from_classes(classes, _classes(np.array([[CAR, PERSON]], np.uint8))[0])
    assert 0 < mask.sum() < mask.size
    data = api.encode(image, sc_model, semantics=ids, preserve_classes="car,person").data
    header, payload, sections = _sections(data)
    assert header.family == "sc"
    symbols = sc_model.analysis(image[None], classes[None]).numpy()[0]
    table = sc_model.coding_table()
    if header.uniform_table:
        table = entropy.uniform_table(table.shape[0], 5)
    stored = entropy.range_decode(sections.latents, table, (int(mask.sum()), 4))
    assert (stored == symbols[mask.astype(bool)]).all()


def test_a_full_mask_codes_and_decodes_exactly_as_the_gc_path(sc_model, scene):
    image, ids = scene
    classes = _classes(ids)
    result = api.encode(image, sc_model, semantics=ids)  # preserve all: the default
    sections = _sections(result.data)[2]
    assert sections.mask_kind == bitstream.MASK_ALL and sections.mask == b""
    symbols = sc_model.analysis(image[None], classes[None]).numpy()[0]
    # GC's coding of a whole latent grid, byte for byte
    assert (result.uniform_table, sections.latents) == gc.code_latents(symbols, sc_model)
    direct = sc_model.reconstruct(image[None], classes[None], np.ones((1, 5, 7), np.uint8)).numpy()[0]
    assert (api.decode(result.data, sc_model) == direct).all()


def test_unpreserved_latents_do_not_reach_the_decoder(sc_model, scene):
    image, ids = scene
    classes = _classes(ids)[None]
    mask = np.zeros((1, 5, 7), np.uint8)
    mask[0, :2] = 1
    symbols = sc_model.analysis(image[None], classes).numpy()
    scrambled = symbols.copy()
    scrambled[0, 2:] = (scrambled[0, 2:] + 1) % 5
    one = sc_model.synthesis(symbols, classes, mask, HEIGHT, WIDTH).numpy()
    other = sc_model.synthesis(scrambled, classes, mask, HEIGHT, WIDTH).numpy()
    assert (one == other).all()
    assert not (sc_model.synthesis(scrambled, classes, np.ones_like(mask), HEIGHT, WIDTH).numpy() == one).all()


def test_bad_semantic_inputs_give_clear_errors(sc_model, scene, tiny_model):
    image, ids = scene
    with pytest.raises(ImageError, match="label map is 103x72, the image 104x72"):
        api.encode(image, sc_model, semantics=ids[:, :-1])
    bad = ids.copy()
    bad[0, 0] = 40
    with pytest.raises(TfgcError, match="id 40"):
        api.encode(image, sc_model, semantics=bad)
    with pytest.raises(ModelError, match="needs the image's semantic label map"):
        api.encode(image, sc_model)
    with pytest.raises(ModelError, match="takes no label map"):
        api.encode(image, tiny_model, semantics=ids)
    with pytest.raises(ImageError, match="not binary"):
        api.encode(image, sc_model, semantics=ids, preserve=np.arange(HEIGHT * WIDTH).reshape(HEIGHT, WIDTH) % 3)
    with pytest.raises(ModelError, match="not both"):
        api.encode(image, sc_model, semantics=ids, preserve="none", preserve_classes="car")


def test_damaged_sections_are_format_errors(sc_model, scene):
    image, ids = scene
    data = api.encode(image, sc_model, semantics=ids, preserve=labels.box_mask(HEIGHT, WIDTH, 0.5)).data
    header, payload, sections = _sections(data)
    packed = bitstream.pack_selective
    for broken, message in [
        (payload[:3], "ends inside the label map section header"),
        (b"\x09" + payload[1:], "unknown label map coding 9"),
        (packed(bitstream.SelectiveSections(sections.label_coding, sections.label_map, 7, b"x", b"")),
         "unknown mask kind 7"),
        (packed(bitstream.SelectiveSections(sections.label_coding, sections.label_map, bitstream.MASK_BITS,
                                            b"\xff" * 9, sections.latents)), "mask holds 9 bytes"),
        (packed(bitstream.SelectiveSections("png", b"not a png", bitstream.MASK_ALL, b"", sections.latents)),
         "label map does not decode"),
    ]:
        with pytest.raises(FormatError, match=message):
            api.decode(bitstream.pack(header, broken), sc_model)


# ---- the model and its training -----------------------------------------------------------------------------------
def test_sampled_masks_follow_the_mix():
    classes = tf.constant(np.repeat(np.arange(4, dtype=np.uint8), 16)[None, :, None] * np.ones((2, 1, 64), np.uint8))
    for mix, expected in (([1, 0, 0, 0], 0.0), ([0, 1, 0, 0], 1.0)):
        assert float(tf.reduce_mean(sample_masks(classes, 4, mix, 0.5, 16))) == expected
    assert float(tf.reduce_min(sample_masks(classes, 4, [0, 0, 0, 1], 1.0, 16))) == 1.0
    assert float(tf.reduce_max(sample_masks(classes, 4, [0, 0, 0, 1], 0.0, 16))) == 0.0
    for box in sample_masks(classes, 4, [0, 0, 1, 0], 0.5, 16).numpy():  # one filled rectangle each
        rows, cols = np.nonzero(box)
        assert box.sum() == (rows.ptp() + 1) * (cols.ptp() + 1) > 0
    by_class = sample_masks(classes, 4, [0, 0, 0, 1], 0.5, 16).numpy()
    assert (by_class == by_class[:, :, :1]).all()  # each row of cells is one class: preserved or not as a whole


def test_rate_terms_count_preserved_latents_only():
    tf.keras.utils.set_random_seed(0)
    config = preset("sc-tiny").replace(adversarial_weight=0.0, feature_matching_weight=0.0, rate_weight=1.0)
    model = build_model(config)
    images = tf.random.uniform([2, 32, 32, 3], 0, 255)
    classes = tf.zeros([2, 32, 32], tf.uint8)
    for value, positive in ((0, False), (1, True)):
        outputs = model.generate((images, classes, tf.fill([2, 2, 2], float(value))), training=True)
        terms = model.generator_loss_terms(None, outputs, None, None)
        assert bool(tf.reduce_all(terms["rate"] > 0)) == positive
        assert bool(tf.reduce_all(terms["entropy_model"] > 0)) == positive


def test_cityscapes_layout_pairs_and_errors(tmp_path):
    root = tmp_path / "cityscapes"
    (root / "leftImg8bit" / "train" / "aachen").mkdir(parents=True)
    (root / "gtFine" / "train" / "aachen").mkdir(parents=True)
    for i in range(3):
        image, ids = procedural_scene(32, 48, np.random.default_rng(i))
        Image.fromarray(image).save(root / "leftImg8bit" / "train" / "aachen" / f"aachen_{i}_leftImg8bit.png")
        Image.fromarray(ids).save(root / "gtFine" / "train" / "aachen" / f"aachen_{i}_gtFine_labelIds.png")
    Image.fromarray(ids).save(root / "gtFine" / "train" / "aachen" / "lonely_gtFine_labelIds.png")  # ignored
    from tfgc.data import check_label_maps, semantic_pairs

    pairs = semantic_pairs([root])
    assert [p[0].split("/")[-1] for p in pairs] == [f"aachen_{i}_leftImg8bit.png" for i in range(3)]
    assert all("gtFine_labelIds" in label for _, label in pairs)
    check_label_maps(pairs, "cityscapes", 20)
    Image.fromarray(image).save(root / "orphan_leftImg8bit.png")
    with pytest.raises(DataError, match="1 photographs have no _gtFine_labelIds.png label map"):
        semantic_pairs([root])
    Image.fromarray(np.full((32, 48), 50, np.uint8)).save(pairs[0][1])
    with pytest.raises(DataError, match="holds id 50"):
        check_label_maps(pairs, "cityscapes", 20)


def test_semantic_crops_keep_photograph_and_labels_aligned(tmp_path):
    from tfgc.data import semantic_pairs, semantic_training_dataset

    rng = np.random.default_rng(0)
    for i in range(2):  # a photograph whose red channel is 10 x its class
        ids = np.repeat(rng.integers(0, 6, (6, 8)), 8, 0).repeat(8, 1).astype(np.uint8)
        image = np.stack([ids * 10, ids, ids], -1).astype(np.uint8)
        Image.fromarray(image).save(tmp_path / f"x{i}_leftImg8bit.png")
        Image.fromarray(ids).save(tmp_path / f"x{i}_gtFine_labelIds.png")
    dataset = semantic_training_dataset(semantic_pairs([tmp_path]), 32, 3, "identity", 6)
    for images, classes in dataset.take(3):
        assert images.shape == (3, 32, 32, 3) and classes.shape == (3, 32, 32) and classes.dtype == tf.uint8
        assert (images.numpy()[..., 0] == classes.numpy() * 10).all()


def test_config_of_sc_models():
    config = preset("sc-small")
    assert config.model.family == "sc" and config.model.classes == 20
    assert preset("gc-small").model.classes == 0
    with pytest.raises(ConfigError, match="identity label set needs semantic_classes"):
        config.replace(label_set="identity")
    assert config.replace(label_set="identity", semantic_classes=7).model.classes == 7
    with pytest.raises(ConfigError, match="mask_mix"):
        config.replace(mask_mix=[0, 0, 0, 0])


def test_procedural_scenes_label_what_they_draw():
    image, ids = procedural_scene(128, 256, np.random.default_rng(1))
    assert image.shape == (128, 256, 3) and ids.shape == (128, 256)
    assert set(np.unique(ids)) <= {7, 8, 11, 17, 21, 23, 24, 26}
    assert {7, 23} <= set(np.unique(ids))  # road and sky in every scene
    # each class is drawn in its own colours: class means differ
    means = {c: image[ids == c].mean(axis=0) for c in (7, 23)}
    assert np.abs(means[7] - means[23]).max() > 30


@pytest.mark.timeout(900)
@pytest.mark.slow
def test_sc_training_cli_and_codec_cli_end_to_end(tmp_path):
    scenes = tmp_path / "scenes"
    write_scenes(scenes, 6, 64, 96, seed=2)
    run = tmp_path / "run"
    env = {"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"}
    import os

    env = dict(os.environ, **env)

    def tfgc(*args, module="tfgc"):
        return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True,
                              env=env)

    trained = tfgc("--preset", "sc-tiny", "--data", scenes, "--out", run, "--steps", 24, "--steps-per-epoch", 12,
                   "--adversarial-weight", 0, "--feature-matching-weight", 0, "--crop-size", 48, module="tfgc.train")
    assert trained.returncode == 0, trained.stderr
    losses = [float(line.split("distortion: ")[1].split()[0]) for line in trained.stdout.splitlines()
              if "distortion: " in line]
    assert len(losses) == 2 and losses[1] < losses[0]
    model = run / "model"
    image, labels = scenes / "scene_0001_leftImg8bit.png", scenes / "scene_0001_gtFine_labelIds.png"

    compressed = tfgc("compress", image, tmp_path / "a.tfgc", "--model", model, "--semantics", labels,
                      "--preserve-classes", "car,person", "--json")
    assert compressed.returncode == 0, compressed.stderr
    report = json.loads(compressed.stdout)
    assert report["bytes"] == (tmp_path / "a.tfgc").stat().st_size
    assert report["label_map_bpp"] > 0 and 0 <= report["preserved"] < 1
    decoded = tfgc("decompress", tmp_path / "a.tfgc", tmp_path / "a.png", "--model", model,
                   "--semantics-out", tmp_path / "labels.png")
    assert decoded.returncode == 0, decoded.stderr
    assert Image.open(tmp_path / "a.png").size == (96, 64)
    stored = np.asarray(Image.open(tmp_path / "labels.png"))
    assert (stored == _classes(np.asarray(Image.open(labels)))).all()
    info = json.loads(tfgc("info", tmp_path / "a.tfgc").stdout)
    assert info["family"] == "sc" and info["preserved"] == report["preserved"]

    none = tfgc("compress", image, tmp_path / "b.tfgc", "--model", model, "--semantics", labels, "--preserve", "none",
                "--json")
    assert json.loads(none.stdout)["latents_bpp"] == 0
    for args, message in [
        (("--semantics", tmp_path / "a.png"), "label map .* is a RGB image"),
        ((), "needs the image's semantic label map"),
        (("--preserve", "none"), "need --semantics"),
        (("--semantics", labels, "--preserve-classes", "dragon"), "unknown class 'dragon'"),
    ]:
        failed = tfgc("compress", image, tmp_path / "c.tfgc", "--model", model, *args)
        assert failed.returncode != 0 and len(failed.stderr.strip().splitlines()) == 1, failed.stderr
        import re

        assert re.search(message, failed.stderr), failed.stderr
    assert not (tmp_path / "c.tfgc").exists()

    exported = tfgc("export", "--model", model, "--out", tmp_path / "export", "--format", "serving")
    assert exported.returncode == 0 and "serving: max |diff| 0, identical" in exported.stdout

    report_dir = tmp_path / "docs"
    selective_report = tfgc("selective", "--model", model, "--data", scenes, "--limit", 2, "--fractions", 0, 1,
                            "--out", report_dir, "--downscale", 1)
    assert selective_report.returncode == 0, selective_report.stderr
    results = json.loads((report_dir / "selective" / "results.json").read_text())
    rows = {(r["image"], r["setting"]): r for r in results["images"]}
    assert rows[("scene_0000", "box 0%")]["latents_bpp"] == 0
    assert rows[("scene_0000", "box 100%")]["psnr_synthesized"] is None
    assert all(r["in_training_set"] for r in results["images"])
    assert (report_dir / "selective" / "example.png").is_file() and (report_dir / "selective.md").is_file()


def test_save_and_load_an_sc_model(tmp_path, sc_model, scene):
    from tfgc.models.store import load_model

    image, ids = scene
    sc_model.update_coding_tables()
    directory = save_model(sc_model, tmp_path / "sc")
    loaded = load_model(directory)
    assert loaded.family == "sc" and loaded.fingerprint() == sc_model.fingerprint()
    data = api.encode(image, sc_model, semantics=ids, preserve_classes="car").data
    assert (api.decode(data, loaded) == api.decode(data, sc_model)).all()
    assert api.encode(image, loaded, semantics=ids, preserve_classes="car").data == data


def _scene_batch(n=2, size=32):
    rng = np.random.default_rng(4)
    pairs = [procedural_scene(size, size, rng) for _ in range(n)]
    images = tf.constant(np.stack([p[0] for p in pairs]), tf.float32)
    classes = tf.constant(np.stack([_classes(p[1]) for p in pairs]))
    masks = tf.constant(np.stack([np.eye(size // 16, dtype=np.float32)] * n))
    return images, classes, masks


@pytest.mark.parametrize("mode", ["float16", "bfloat16"])
@pytest.mark.slow
def test_sc_mixed_precision_steps_keep_weights_finite(mode):
    from tfgc.train import compile_model, set_precision

    set_precision(mode)
    try:
        config = preset("sc-tiny")
        tf.keras.utils.set_random_seed(0)
        model = build_model(config)
        compile_model(model, config)
        history = model.fit(tf.data.Dataset.from_tensors(_scene_batch()[:2]).repeat(), steps_per_epoch=3, epochs=1,
                            verbose=0)
        assert all(np.isfinite(v[0]) for v in history.history.values())
        assert all(np.all(np.isfinite(v.numpy())) for v in model.trainable_variables)
    finally:
        set_precision("off")


@pytest.mark.slow
def test_sc_mirrored_strategy_step_matches_single_device_step(one_training_step):
    config = preset("sc-tiny")
    batch = _scene_batch(n=4)

    start, single, _ = one_training_step(config, batch, tf.distribute.get_strategy())
    # Not the default collective all-reduce: its instance keys are per process, and the GC test's collectives (other
    # shapes) would meet this test's under the same keys. The averaging over the global batch is what is tested.
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"],
                                              cross_device_ops=tf.distribute.ReductionToOneDevice())
    _, replicated, _ = one_training_step(config, batch, mirrored, initial=start)
    assert sum(float(np.abs(a - b).sum()) for a, b in zip(single, start)) > 0
    for a, b in zip(single, replicated):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_two_stage_fidelity_control_with_an_sc_model(tmp_path, scene):
    from tfgc.config import with_gan
    from tfgc.models.store import initialize_from
    from tfgc.train import compile_model

    tf.keras.utils.set_random_seed(2)
    stage1_config = preset("sc-tiny").replace(adversarial_weight=0.0, feature_matching_weight=0.0, stage=1)
    stage1 = build_model(stage1_config)
    directory = save_model(stage1, tmp_path / "stage1")
    config = with_gan(stage1_config.replace(stage=0)).replace(stage=2, init_from=str(directory),
                                                              fidelity_control=True)
    stage2 = build_model(config)
    initialize_from(stage2, directory)
    compile_model(stage2, config)
    frozen = [v.numpy().copy() for v in stage2.semantic_features.weights + stage2.encoder.weights]
    stage2.fit(tf.data.Dataset.from_tensors(_scene_batch()[:2]), epochs=1, verbose=0)
    assert all((a == v.numpy()).all() for a, v in zip(frozen, stage2.semantic_features.weights
                                                      + stage2.encoder.weights))
    image, ids = scene
    data = api.encode(image, stage1, semantics=ids, preserve_classes="car,sky").data
    assert (api.decode(data, stage2, alpha=0.0) == api.decode(data, stage1)).all()
    assert not (api.decode(data, stage2, alpha=1.0) == api.decode(data, stage1)).all()
