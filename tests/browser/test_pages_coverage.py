"""Every folder of customer pages has a walk (test_pages_*), so a new kind of
page cannot go unchecked on phones and by axe-core."""

from . import (
    test_pages_login,
    test_pages_recovery,
    test_pages_registration,
    test_pages_sites,
)
from .customer_pages import NOT_CUSTOMER_PAGES, ROOT


def test_every_folder_of_customer_pages_is_walked():
    walked = {folder for module in (test_pages_login, test_pages_registration, test_pages_recovery, test_pages_sites)
              for folder in module.FOLDERS}
    folders = {p.name for p in (ROOT / "templates").iterdir() if p.is_dir()} - NOT_CUSTOMER_PAGES
    folders |= {f"sites/{p.parent.parent.name}" for p in (ROOT / "sites").glob("*/templates/*.html")}
    assert folders == walked
