"""Class files and lists as datasets ship them: classInd.txt (1-based), unlabelled test lists, errors that
name the file, the line and the accepted formats; subsets of the class list."""
import pytest

from msta_jax.data import splits
from msta_jax.data import splits_generate


def test_class_index_files_number_from_0_or_1():
  assert splits.parse_class_index(b'1 ApplyEyeMakeup\r\n2 ApplyLipstick\r\n3 Archery\r\n', 'classInd.txt') == (
      ['ApplyEyeMakeup', 'ApplyLipstick', 'Archery'], 1)
  assert splits.parse_class_index(b'0 brush hair\n1 cartwheel\n', 'c.txt') == (['brush hair', 'cartwheel'], 0)
  assert splits.parse_class_index(b'["a", "b"]', 'c.json') == (['a', 'b'], 0)
  assert splits.parse_class_index(b'id,name\n0,a\n1,"b, c"\n', 'c.csv') == (['a', 'b, c'], 0)


@pytest.mark.parametrize('data, where', [
    (b'1 a\n3 b\n', 'c.txt:2: ids must run from 0 or 1 in steps of 1; got 3 after 1 names'),
    (b'1 a\nb\n', "c.txt:2: expected `<id> <name>`, got 'b'; class files are a JSON list"),
    (b'', 'c.txt: no classes; class files are'),
])
def test_class_index_errors_name_file_line_and_formats(data, where):
  with pytest.raises(splits.SplitFileError) as e:
    splits.parse_class_index(data, 'c.txt')
  assert where in str(e.value) and "UCF101 classInd.txt" in str(e.value)


def test_json_class_file_errors_name_the_formats():
  with pytest.raises(splits.SplitFileError, match=r'c.json:1: not JSON \(Extra data\); class files are a JSON '
                     r'list of names, .*classInd.txt'):
    splits.parse_class_list(b'1 ApplyEyeMakeup\n', 'c.json')


def test_lists_without_labels_take_the_class_folder_and_1_based_labels_shift():
  names = ['ApplyEyeMakeup', 'brush hair']
  text = 'ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\nbrush_hair/x.avi\nApplyEyeMakeup/v_2.avi 1\n'
  assert splits.parse_list(text, 'l.txt', folder_classes=names, first_id=1) == [
      ('ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi', 0), ('brush_hair/x.avi', 1), ('ApplyEyeMakeup/v_2.avi', 0)]
  with pytest.raises(splits.SplitFileError, match=r"l.txt:1: 'Other/v.avi' has no label and its first folder "
                     r"'Other' names no class"):
    splits.parse_list('Other/v.avi\n', 'l.txt', folder_classes=names)
  with pytest.raises(splits.SplitFileError, match=r'l.txt:1: expected `<path> <label id>`, got .* \(a list '
                     r'without labels needs --classes\)'):
    splits.parse_list('a/v.avi\n', 'l.txt')


def test_subset_classes_are_checked_and_kept_in_list_order():
  assert splits_generate.subset_classes('hmdb51', ['cartwheel', 'brush_hair']) == ['brush hair', 'cartwheel']
  with pytest.raises(ValueError, match=r"--classes: \['Archery'\] are not hmdb51 classes"):
    splits_generate.subset_classes('hmdb51', ['Archery', 'cartwheel'])
  with pytest.raises(ValueError, match='at least 2 distinct classes'):
    splits_generate.subset_classes('hmdb51', ['cartwheel', 'Cartwheel'])
