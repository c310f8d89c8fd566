"""The brand's library of texts and pictures for guides' Moments (朋友圈素材): operators write
them in the console, guides copy the text and save the pictures in the workbench.

Pictures are stored through ``core.storage.save_image`` (checked, upright, re-encoded without
EXIF) before a material is saved; the material keeps their keys."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, select

from core import storage
from core.db import db
from core.errors import NotFound, ValidationError
from core.tenancy import require_brand_id
from guide_distribution.models import MATERIAL_IMAGES_MAX, MATERIAL_TEXT_MAX, Material

TITLE_MAX = 80


def image_prefix() -> str:
    return f"guide/b{require_brand_id()}/materials"


def _check(*, title: str, body: str, images: list[str]) -> tuple[str, str, list[str]]:
    title, body = (title or "").strip(), (body or "").strip()
    if not title:
        raise ValidationError(_l("Give the material a title."), field="title")
    if len(title) > TITLE_MAX:
        raise ValidationError(
            _l("The title is longer than %(n)d characters.", n=TITLE_MAX), field="title"
        )
    if len(body) > MATERIAL_TEXT_MAX:
        raise ValidationError(
            _l("The text is longer than %(n)d characters.", n=MATERIAL_TEXT_MAX), field="body"
        )
    own = image_prefix() + "/"
    if any(not storage.is_key(k) or not k.startswith(own) for k in images):
        raise ValidationError(storage.BAD_IMAGE, field="new_images")
    images = list(dict.fromkeys(images))
    if len(images) > MATERIAL_IMAGES_MAX:
        raise ValidationError(
            _l("A material holds at most %(n)d pictures.", n=MATERIAL_IMAGES_MAX),
            field="new_images",
        )
    if not body and not images:
        raise ValidationError(_l("Write a text or add a picture."), field="body")
    return title, body, images


def create_material(
    *, title: str, body: str, images: list[str], staff_id: int | None = None
) -> Material:
    """A new material, shown to guides at once."""
    title, body, images = _check(title=title, body=body, images=images)
    material = Material(title=title, body=body, images=images, active=True, created_by=staff_id)
    db.session.add(material)
    db.session.flush()
    return material


def get_material(material_id: int) -> Material:
    material = db.session.execute(
        select(Material).where(Material.id == material_id)
    ).scalar_one_or_none()
    if material is None:
        raise NotFound(_l("No such material."))
    return material


def update_material(
    *, material_id: int, title: str, body: str, images: list[str], active: bool
) -> Material:
    """Change a material's text, pictures, or whether guides see it."""
    material = get_material(material_id)
    title, body, images = _check(title=title, body=body, images=images)
    material.title, material.body, material.images = title, body, images
    material.active = bool(active)
    db.session.flush()
    return material


def delete_material(*, material_id: int) -> None:
    """Remove a material (its stored pictures stay: a key may be shared by content)."""
    get_material(material_id)
    db.session.execute(delete(Material).where(Material.id == material_id))
    db.session.flush()
