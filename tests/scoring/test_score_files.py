"""Reading scores.txt / scores.json as scoring programs write them."""

import math

import pytest

from scoring.scores import (
    MAX_SCORES_FILE_BYTES,
    ScoreFileError,
    parse_scores_json,
    parse_scores_txt,
    read_scores,
)


# --- scores.txt ---------------------------------------------------------------


def test_txt_without_space_after_colon_parses():
    # CodaLab splits on the first colon; `correct:1` is what many programs write.
    assert parse_scores_txt("correct:1\n") == {"correct": 1.0}


def test_txt_tolerates_whitespace_blank_lines_and_crlf():
    text = "set1: 0.5\r\n\r\n  key  :  0.25  \n   \nset2 :-3e-2"
    assert parse_scores_txt(text) == {"set1": 0.5, "key": 0.25, "set2": -0.03}


def test_txt_splits_on_first_colon_only():
    # The value side keeps no colon, so a second colon makes it non-numeric.
    with pytest.raises(ScoreFileError, match=r"line 1: 'a': value 'b:1' is not a number"):
        parse_scores_txt("a:b:1")


def test_txt_non_numeric_value_names_file_line_and_key():
    text = "correct: 1\nset1: 0.5\nacc: abc\n"
    with pytest.raises(ScoreFileError) as caught:
        parse_scores_txt(text)
    assert str(caught.value) == "scores.txt: line 3: 'acc': value 'abc' is not a number"


def test_txt_error_uses_given_source_name():
    with pytest.raises(ScoreFileError, match=r"^output/scores\.txt: line 1:"):
        parse_scores_txt("acc: high", source="output/scores.txt")


def test_txt_empty_value_is_rejected():
    with pytest.raises(ScoreFileError, match=r"line 2: 'b': value '' is not a number"):
        parse_scores_txt("a: 1\nb:\n")


def test_txt_line_without_colon_is_rejected():
    with pytest.raises(ScoreFileError, match=r"line 2: expected 'key: value'.*no colon"):
        parse_scores_txt("a: 1\njust some text\n")


def test_txt_empty_key_is_rejected():
    with pytest.raises(ScoreFileError, match=r"line 1: the key before ':' is empty"):
        parse_scores_txt(": 0.3")


def test_txt_nan_accepted_inf_rejected():
    assert math.isnan(parse_scores_txt("a: nan")["a"])
    assert math.isnan(parse_scores_txt("a: NaN")["a"])
    for bad in ("inf", "-inf", "Infinity", "1e999"):
        with pytest.raises(ScoreFileError, match=r"'a': value is infinite"):
            parse_scores_txt(f"a: {bad}")


def test_txt_duplicate_key_last_wins():
    assert parse_scores_txt("a: 1\na: 2\n") == {"a": 2.0}


def test_txt_leading_bom_is_ignored():
    assert parse_scores_txt("\ufeffacc: 0.9") == {"acc": 0.9}


def test_txt_empty_file_gives_no_scores():
    assert parse_scores_txt("") == {}
    assert parse_scores_txt("\n  \n") == {}


# --- scores.json --------------------------------------------------------------


def test_json_numbers_and_numeric_strings():
    text = '{"accuracy": 0.9, "count": 3, "f1": "0.5", "loss": " 1e-3 "}'
    assert parse_scores_json(text) == {"accuracy": 0.9, "count": 3.0, "f1": 0.5, "loss": 0.001}


def test_json_accepts_bytes_with_bom():
    assert parse_scores_json('\ufeff{"a": 1}'.encode()) == {"a": 1.0}


def test_json_bool_is_not_a_number():
    with pytest.raises(ScoreFileError, match=r"scores.json: 'ok': value true is not a number"):
        parse_scores_json('{"ok": true}')


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a": null}', r"'a': value null is not a number"),
        ('{"a": "high"}', r"'a': value 'high' is not a number"),
        ('{"a": [1]}', r"'a': value is a list, expected a number"),
        ('{"a": {"score": 1}}', r"'a': value is an object, expected a number"),
        ('{"a": "inf"}', r"'a': value is infinite"),
        ('{"a": Infinity}', r"'a': value is infinite"),
    ],
)
def test_json_non_numeric_values_are_rejected(text, message):
    with pytest.raises(ScoreFileError, match=message):
        parse_scores_json(text)


def test_json_nan_accepted():
    assert math.isnan(parse_scores_json('{"a": NaN}')["a"])
    assert math.isnan(parse_scores_json('{"a": "nan"}')["a"])


@pytest.mark.parametrize("text", ["[1, 2]", "0.5", '"a"', "null"])
def test_json_document_must_be_an_object(text):
    with pytest.raises(ScoreFileError, match=r"^scores.json: expected a JSON object"):
        parse_scores_json(text)


def test_json_syntax_error_says_where():
    with pytest.raises(ScoreFileError, match=r"^scores.json: line 2, column \d+: not valid JSON"):
        parse_scores_json('{"a": 1,\n "b": }')


def test_json_not_utf8_is_rejected():
    with pytest.raises(ScoreFileError, match=r"not UTF-8"):
        parse_scores_json(b'{"a": "\xff"}')


# --- read_scores ----------------------------------------------------------------


def test_read_prefers_json(tmp_path):
    (tmp_path / "scores.json").write_text('{"acc": 0.75}')
    (tmp_path / "scores.txt").write_text("acc: 0.25\n")
    assert read_scores(tmp_path) == {"acc": 0.75}


def test_read_falls_back_to_txt(tmp_path):
    (tmp_path / "scores.txt").write_text("correct:1\n")
    assert read_scores(str(tmp_path)) == {"correct": 1.0}


def test_read_neither_file(tmp_path):
    with pytest.raises(ScoreFileError) as caught:
        read_scores(tmp_path)
    assert "the scoring program wrote neither scores.json nor scores.txt in its output" in str(
        caught.value
    )


def test_read_missing_folder_is_the_same_error(tmp_path):
    with pytest.raises(ScoreFileError, match="neither scores.json nor scores.txt"):
        read_scores(tmp_path / "nope")


def test_read_error_names_the_file(tmp_path):
    (tmp_path / "scores.txt").write_text("a: 1\nb: x\n")
    with pytest.raises(ScoreFileError, match=r"^scores.txt: line 2: 'b'"):
        read_scores(tmp_path)


def test_read_refuses_huge_file(tmp_path):
    (tmp_path / "scores.txt").write_bytes(b"a: 1\n" * (MAX_SCORES_FILE_BYTES // 5 + 1))
    with pytest.raises(ScoreFileError, match=r"^scores.txt: file is \d+ bytes"):
        read_scores(tmp_path)


def test_score_file_error_is_a_value_error():
    assert issubclass(ScoreFileError, ValueError)


def test_a_symlinked_scores_file_is_refused(tmp_path):
    from scoring.scores import ScoreFileError, read_scores

    secret = tmp_path / "secret"
    secret.write_text("password: hunter2\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "scores.txt").symlink_to(secret)
    with pytest.raises(ScoreFileError, match="symbolic link"):
        read_scores(out)
