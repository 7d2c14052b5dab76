import pytest

from neo_local.api.errors import JobFailure
from neo_local.frontends.data_input import parse_data_input_config, shapes_by_name


def test_dict_keeps_order():
    assert parse_data_input_config('{"b": [1, 2], "a": [3]}') == [("b", (1, 2)), ("a", (3,))]


def test_list_form_has_no_names():
    assert parse_data_input_config("[[1,3,224,224], [1,3,224,224]]") == [(None, (1, 3, 224, 224))] * 2


def test_single_quoted_form():
    assert parse_data_input_config("{'data': [1, 3]}") == [("data", (1, 3))]


def test_absent():
    assert parse_data_input_config(None) is None
    assert parse_data_input_config("  ") is None


@pytest.mark.parametrize("text", ['{"data": [1, -3]}', '{"data": [1, 3.5]}', '{"data": []}', '{"data": "1,3"}'])
def test_bad_shapes(text):
    with pytest.raises(JobFailure, match="DataInputConfig shape for 'data' must be a list of positive integers"):
        parse_data_input_config(text)


def test_wrong_kind():
    with pytest.raises(JobFailure, match="DataInputConfig must be an object of input shapes or a list of shapes"):
        parse_data_input_config("[1, 3, 224, 224]")


def test_shapes_by_name_matches_the_list_form_by_position():
    given = parse_data_input_config("[[1, 3], [1, 5]]")
    assert shapes_by_name(given, ["a", "b"], "m.json", "a, b", "Its inputs: a, b") == {"a": (1, 3), "b": (1, 5)}


@pytest.mark.parametrize("text,message", [
    ("[[1, 3]]", "DataInputConfig lists 1 shapes but m.json has 2 inputs: a, b"),
    ('{"c": [1, 3]}', "Input 'c' in DataInputConfig is not an input of m.json. Its inputs: a, b"),
])
def test_shapes_by_name_refuses_a_wrong_count_or_name(text, message):
    with pytest.raises(JobFailure) as err:
        shapes_by_name(parse_data_input_config(text), ["a", "b"], "m.json", "a, b", "Its inputs: a, b")
    assert message in str(err.value)
