"""Listed videos are found in the layouts the datasets are downloaded in (data/locate.py)."""
import os

from msta_jax.data import locate


def _touch(root, *rels):
  for rel in rels:
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, 'wb').close()


def test_official_layouts_are_found_by_file_name(tmp_path):
  root = str(tmp_path)
  _touch(root, 'ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi',            # UCF-101/<Class>/
         'brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0.avi',           # HMDB51 rar-extracted <class>/
         'train/abseiling/0347ZoDXyP0_000095_000105.mp4',                   # Kinetics <split>/<class>/
         'val/abseiling/0347ZoDXyP0_000095_000105.mp4',
         '20bn-something-something-v2/1.webm',                              # SSv2 in its archive folder
         'flat.avi', 'a/dup.avi', 'b/dup.avi')
  find = locate.Locator(root).find
  j = lambda rel: os.path.join(root, rel)
  assert find('flat.avi') == j('flat.avi')  # As listed: no walk needed.
  assert find('v_ApplyEyeMakeup_g08_c01.avi') == j('ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi')
  assert find('April_09_brush_hair_u_nm_np1_ba_goo_0.avi') == j(
      'brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0.avi')
  # The listed folder must lead: the same Kinetics file name under train/ and val/ stays apart.
  assert find('train/0347ZoDXyP0_000095_000105.mp4') == j('train/abseiling/0347ZoDXyP0_000095_000105.mp4')
  assert find('val/0347ZoDXyP0_000095_000105.mp4') == j('val/abseiling/0347ZoDXyP0_000095_000105.mp4')
  assert find('1.webm') == j('20bn-something-something-v2/1.webm')
  assert find('dup.avi') is None and find('gone.avi') is None  # Ambiguous or absent: missing.
  assert find('test/0347ZoDXyP0_000095_000105.mp4') is None
