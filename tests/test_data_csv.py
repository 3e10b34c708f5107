"""Kaggle-style MNIST CSV: ``label,p1..p784`` rows, optional header, strict validation."""

import io

import numpy as np
import pytest

from nncore.data.csv import read_csv
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
        "every row too short": ([HEADER, "1,2,3", "4,5,6"], "rows have 3 columns, expected 785"),
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
