"""MNIST-style CSV: the header decides the label column, Kaggle's unlabeled test.csv, strict
validation, and Kaggle submissions."""

import io
import os

import numpy as np
import pytest

from nncore.data.csv import read_csv, write_submission
from nncore.errors import DataError

HEADER = "label," + ",".join(f"{row}x{column}" for row in range(1, 29) for column in range(1, 29))


def csv_row(label, pixels):
    return ",".join(str(value) for value in [label, *pixels])


def example_rows(count=3):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(count, 784))
    labels = np.arange(count) % 10
    return images, labels, [csv_row(label, image) for label, image in zip(labels, images, strict=True)]


def write_csv(tmp_path, lines, name="digits.csv"):
    path = tmp_path / name
    path.write_text("".join(line + "\n" for line in lines))
    return path


@pytest.mark.parametrize("with_header", [True, False], ids=["header", "no header"])
def test_rows_become_uint8_images_and_labels(tmp_path, with_header):
    images, labels, rows = example_rows()
    path = write_csv(tmp_path, ([HEADER] if with_header else []) + rows)
    read_images, read_labels = read_csv(path)
    assert read_images.dtype == np.uint8 and read_images.shape == (3, 784)
    assert read_labels.dtype == np.uint8 and read_labels.shape == (3,)
    np.testing.assert_array_equal(read_images, images)
    np.testing.assert_array_equal(read_labels, labels)


def test_a_single_row_gives_one_image(tmp_path):
    _, _, rows = example_rows(1)
    images, labels = read_csv(write_csv(tmp_path, rows[:1]))
    assert images.shape == (1, 784) and labels.shape == (1,)


def test_an_open_text_stream_can_be_read_and_is_named_in_errors():
    _, _, rows = example_rows(2)
    images, _ = read_csv(io.StringIO("\n".join([HEADER, *rows])), name="archive!member.csv")
    assert images.shape == (2, 784)
    with pytest.raises(DataError, match="archive!member.csv"):
        read_csv(io.StringIO(HEADER + "\n1,2,3\n"), name="archive!member.csv")


def test_windows_line_endings_are_accepted(tmp_path):
    _, labels, rows = example_rows(2)
    path = tmp_path / "crlf.csv"
    path.write_bytes(("\r\n".join([HEADER, *rows]) + "\r\n").encode())
    np.testing.assert_array_equal(read_csv(path)[1], labels)


def bad_csv_cases():
    _, _, rows = example_rows(3)
    short_row = rows[1].rsplit(",", 1)[0]
    non_numeric = rows[1].replace(",", ",abc,", 1).rsplit(",", 1)[0]
    too_large = csv_row(1, [0] * 783 + [256])
    negative = csv_row(1, [-1] + [0] * 783)
    huge_number = csv_row(1, [0] * 783 + [99999999])
    return {
        "empty file": ([], "empty file"),
        "header only": ([HEADER], "no data rows"),
        "short row": ([HEADER, rows[0], short_row, rows[2]], "number of columns changed"),
        "non-numeric cell": ([HEADER, rows[0], non_numeric], "could not convert string 'abc'"),
        "value above 255": ([HEADER, rows[0], too_large], "value 256 at data row 2, column 785"),
        "negative value": ([rows[0], negative], "value -1 at data row 2, column 2"),
        "number too large for any pixel": ([HEADER, huge_number], "99999999"),
        "every row too short": ([HEADER, "1,2,3", "4,5,6"], "header has 785 columns but the rows have 3"),
        "no header, rows too short": (["1,2,3", "4,5,6"], "rows have 3 columns, expected 784 pixel columns"),
        "empty cell": ([HEADER, rows[0] + ","], "number of columns changed|could not convert"),
    }


@pytest.mark.parametrize("case", sorted(bad_csv_cases()))
def test_a_malformed_csv_raises_data_error_naming_the_file(tmp_path, case):
    lines, problem = bad_csv_cases()[case]
    path = write_csv(tmp_path, lines, name="bad.csv")
    with pytest.raises(DataError, match=problem) as raised:
        read_csv(path)
    assert str(path) in str(raised.value)


def test_a_file_of_only_blank_lines_is_empty(tmp_path):
    path = tmp_path / "blank.csv"
    path.write_text("\n\n")
    with pytest.raises(DataError, match="empty file"):
        read_csv(path)


# --- the header decides which column is the label (issue 11 item 4a, issue 15 item 1) --------

PIXEL_HEADER = [f"pixel{index}" for index in range(784)]


def labeled_table(count=12, seed=5):
    """Images whose first pixel is always 0 (as MNIST's corner is) and varied labels."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, 784))
    images[:, 0] = 0
    images[:, -1] = 0
    return images, np.arange(count) % 10


def csv_with_label_at(tmp_path, column, header=True, count=12):
    images, labels = labeled_table(count)
    table = np.insert(images, column, labels, axis=1)
    names = PIXEL_HEADER[:column] + ["label"] + PIXEL_HEADER[column:]
    lines = ([",".join(names)] if header else []) + [",".join(map(str, row)) for row in table]
    return write_csv(tmp_path, lines), images, labels


@pytest.mark.parametrize("column", [0, 300, 784], ids=["first", "middle", "last"])
def test_the_label_column_is_found_from_the_header_wherever_it_is(tmp_path, column):
    path, images, labels = csv_with_label_at(tmp_path, column)
    contents = read_csv(path)
    np.testing.assert_array_equal(contents.labels, labels)
    np.testing.assert_array_equal(contents.images, images)
    assert contents.label_column == column
    assert f"label in column {column + 1} ('label')" in contents.layout


def test_kaggle_test_csv_without_a_label_column_is_read_as_unlabeled_images(tmp_path):
    images, _ = labeled_table()
    path = write_csv(tmp_path, [",".join(PIXEL_HEADER)] + [",".join(map(str, row)) for row in images],
                     name="test.csv")
    read_images, read_labels = read_csv(path)
    assert read_labels is None
    np.testing.assert_array_equal(read_images, images)
    assert read_csv(path).label_column is None and "no labels" in read_csv(path).layout
    with pytest.raises(DataError, match="has no label column"):
        read_csv(path, require_labels=True)


def test_a_header_naming_no_label_beside_one_extra_column_is_refused(tmp_path):
    images, labels = labeled_table()
    rows = [",".join(map(str, [label, *image])) for label, image in zip(labels, images, strict=True)]
    names = ",".join(f"pixel{index}" for index in range(785))
    with pytest.raises(DataError, match="which column is the label"):
        read_csv(write_csv(tmp_path, [names, *rows]))


def test_without_a_header_785_columns_mean_label_first_and_784_mean_unlabeled(tmp_path):
    path, images, labels = csv_with_label_at(tmp_path, 0, header=False)
    contents = read_csv(path)
    np.testing.assert_array_equal(contents.labels, labels)
    assert contents.label_column == 0 and "no header" in contents.layout
    unlabeled = write_csv(tmp_path, [",".join(map(str, row)) for row in images], name="u.csv")
    read_images, read_labels = read_csv(unlabeled)
    assert read_labels is None
    np.testing.assert_array_equal(read_images, images)


@pytest.mark.parametrize("with_header", [True, False], ids=["header", "no header"])
def test_a_utf8_byte_order_mark_costs_no_row(tmp_path, with_header):
    images, labels, rows = example_rows(3)
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + "\n".join(([HEADER] if with_header else []) + rows).encode())
    read_images, read_labels = read_csv(path)
    np.testing.assert_array_equal(read_labels, labels)
    np.testing.assert_array_equal(read_images, images)


def test_a_utf16_file_with_its_byte_order_mark_is_decoded(tmp_path):
    images, labels, rows = example_rows(2)
    path = tmp_path / "excel.csv"
    path.write_bytes("\r\n".join([HEADER, *rows]).encode("utf-16"))
    np.testing.assert_array_equal(read_csv(path).labels, labels)


def test_blank_lines_before_the_header_and_between_rows_are_skipped(tmp_path):
    images, labels, rows = example_rows(3)
    path = write_csv(tmp_path, ["", "  ", HEADER, rows[0], "", rows[1], rows[2], ""])
    read_images, read_labels = read_csv(path)
    np.testing.assert_array_equal(read_labels, labels)
    np.testing.assert_array_equal(read_images, images)


def test_quoted_numbers_and_quoted_header_names_are_read(tmp_path):
    images, labels, rows = example_rows(2)
    quoted = [",".join(f'"{cell}"' for cell in line.split(",")) for line in [HEADER, *rows]]
    np.testing.assert_array_equal(read_csv(write_csv(tmp_path, quoted)).labels, labels)


def test_a_first_row_with_one_damaged_cell_is_reported_not_taken_for_a_header(tmp_path):
    images, _ = labeled_table()
    rows = [",".join(map(str, row)) for row in images]
    rows[0] = "x" + rows[0]  # an unlabeled file: its first row must not vanish as a "header"
    with pytest.raises(DataError, match="could not convert"):
        read_csv(write_csv(tmp_path, rows))


def test_shuffled_pixel_columns_are_refused(tmp_path):
    images, _ = labeled_table()
    names = list(PIXEL_HEADER)
    names[10], names[11] = names[11], names[10]
    path = write_csv(tmp_path, [",".join(names)] + [",".join(map(str, row)) for row in images])
    with pytest.raises(DataError, match="'pixel10' comes after 'pixel11'"):
        read_csv(path)


@pytest.mark.parametrize("header, problem", [
    ("label,label," + ",".join(PIXEL_HEADER[:783]), "which one is the label"),
    ("label," + ",".join(PIXEL_HEADER) + ",", "trailing comma"),
    ("label;" + ";".join(PIXEL_HEADER), "is the separator a comma"),
])
def test_headers_that_fit_no_layout_are_refused_with_the_reason(tmp_path, header, problem):
    _, _, rows = example_rows(1)
    with pytest.raises(DataError, match=problem):
        read_csv(write_csv(tmp_path, [header, rows[0]]))


def test_other_image_sizes_are_read_when_the_caller_says_so(tmp_path):
    header = "label," + ",".join(f"p{index}" for index in range(64))
    path = write_csv(tmp_path, [header, "3," + ",".join(["7"] * 64)])
    images, labels = read_csv(path, pixels=64)
    assert images.shape == (1, 64) and labels.tolist() == [3]
    with pytest.raises(DataError, match="65 pixel columns|64 pixel columns"):
        read_csv(path)


def test_a_headerless_file_whose_label_looks_last_is_flagged(tmp_path):
    path, _, _ = csv_with_label_at(tmp_path, 784, header=False)
    with pytest.warns(UserWarning, match="label is the last column"):
        contents = read_csv(path)
    assert contents.label_column == 0


def test_a_line_longer_than_any_row_stops_the_read(tmp_path):
    path = tmp_path / "no-newlines.csv"
    path.write_bytes(b"1," * 5_000_000)
    with pytest.raises(DataError, match="line 1 is longer than"):
        read_csv(path)


def test_a_text_stream_with_a_byte_order_mark_keeps_its_first_row():
    images, labels, rows = example_rows(2)
    contents = read_csv(io.StringIO("\ufeff" + "\n".join(rows)), name="stream.csv")
    np.testing.assert_array_equal(contents.labels, labels)


# --- Kaggle submissions -------------------------------------------------------------------------

def test_write_submission_writes_image_ids_from_1_and_the_labels(tmp_path):
    path = tmp_path / "submission.csv"
    assert write_submission(path, np.array([7, 2, 1], dtype=np.int64)) == path
    assert path.read_text() == "ImageId,Label\n1,7\n2,2\n3,1\n"
    assert os.listdir(tmp_path) == ["submission.csv"]


@pytest.mark.parametrize("predictions", [np.zeros((2, 2), int), np.array([0.5, 1.0]), ["a", "b"]])
def test_write_submission_refuses_what_is_not_one_class_per_image(tmp_path, predictions):
    with pytest.raises(ValueError, match="1-D array of integer classes"):
        write_submission(tmp_path / "s.csv", predictions)
    assert not (tmp_path / "s.csv").exists()


def test_a_header_of_column_numbers_is_a_header_not_a_row_of_pixels(tmp_path):
    images, _ = labeled_table()
    path = write_csv(tmp_path, [",".join(map(str, range(784)))] + [",".join(map(str, row)) for row in images])
    read_images, read_labels = read_csv(path)
    assert read_labels is None
    np.testing.assert_array_equal(read_images, images)
