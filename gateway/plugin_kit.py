"""``gateway plugin new KIND VENDOR``: a new vendor plugin, copied from ``plugins/_template``.

The template is a working plugin for a made-up vendor: a shared ``base/`` (pyproject,
package skeleton, auth, errors, settings) and one folder per kind (``psa/``, ``rmm/``,
``docs/``) with that kind's constants, client, records, hooks, simulator, README and tests.
``new_plugin`` copies ``base/`` and then the kind's folder into ``<into>/<kind>_<vendor>/``,
replacing the template's names in every path and file:

=====================  ===========================================  ===================
in the template        becomes                                      e.g.
=====================  ===========================================  ===================
``templatevendor``     the vendor name (config, entry points,       ``acme``
                       package ``gateway_acme``, distribution
                       ``msp-gateway-acme``)
``TemplateVendor``     the class-name prefix                        ``Acme``
``Template Vendor``    the vendor's title                           ``Acme PSA``
``TEMPLATEVENDOR``     the vendor name in capitals                  ``ACME``
``*.tmpl``             the file without ``.tmpl``                   ``pyproject.toml``
=====================  ===========================================  ===================

The generated plugin passes the gateway's conformance suite (PSA) or its own pipeline tests
(RMM, docs) against its simulator stub before any vendor code is written.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

KINDS = ("psa", "rmm", "docs")
TEMPLATE_VENDOR = "templatevendor"
TEMPLATE_CLASS = "TemplateVendor"
TEMPLATE_TITLE = "Template Vendor"
TEMPLATE_SUFFIX = ".tmpl"
VENDOR_NAME = re.compile(r"^[a-z][a-z0-9]{1,39}$")
# Build leftovers never copied (the template's own conftest.py and TEMPLATE.md sit outside base/ and the kinds).
SKIPPED = {"__pycache__", ".pytest_cache"}
TEXT_SUFFIXES = {".py", ".toml", ".md", ".txt", ".cfg", ".ini", ".tmpl", ".json", ".typed"}


class PluginKitError(ValueError):
    """A plugin that cannot be generated as asked; the message says why."""


@dataclass(frozen=True)
class NewPlugin:
    """What ``new_plugin`` made."""

    path: Path
    kind: str
    vendor: str
    package: str
    distribution: str
    class_prefix: str
    title: str
    files: tuple[Path, ...]


def default_template() -> Path:
    """``plugins/_template`` of the source tree this gateway was installed from."""
    return Path(__file__).resolve().parents[1] / "plugins" / "_template"


def class_prefix_for(vendor: str, title: str) -> str:
    """``IT Glue`` -> ``ITGlue``, ``acme`` -> ``Acme``: the title's words joined, each with its
    first letter raised, when that makes an identifier; else the capitalised vendor name."""
    joined = "".join(word[:1].upper() + word[1:] for word in re.split(r"[^A-Za-z0-9]+", title) if word)
    return joined if joined.isidentifier() and joined[:1].isalpha() else vendor.capitalize()


def _replacements(vendor: str, class_prefix: str, title: str) -> list[tuple[str, str]]:
    # Longest first, so "Template Vendor" is not half-replaced by a shorter token.
    return [
        (TEMPLATE_TITLE, title),
        (TEMPLATE_CLASS, class_prefix),
        (TEMPLATE_VENDOR.upper(), vendor.upper()),
        (TEMPLATE_VENDOR, vendor),
    ]


def _render(text: str, replacements: list[tuple[str, str]]) -> str:
    for old, new in replacements:
        text = text.replace(old, new)
    return text


def _sources(template: Path, kind: str) -> list[tuple[Path, Path]]:
    """(source file, path relative to the new plugin), base first, the kind's files after (a
    kind's file replaces the base file of the same name)."""
    chosen: dict[Path, Path] = {}
    for layer in (template / "base", template / kind):
        if not layer.is_dir():
            raise PluginKitError(f"the template at {template} has no {layer.name}/ folder")
        for source in sorted(layer.rglob("*")):
            relative = source.relative_to(layer)
            if source.is_dir() or SKIPPED & set(relative.parts):
                continue
            chosen[relative] = source
    return [(source, relative) for relative, source in chosen.items()]


def new_plugin(
    kind: str,
    vendor: str,
    *,
    into: Path | str = "plugins",
    title: str | None = None,
    class_prefix: str | None = None,
    template: Path | str | None = None,
) -> NewPlugin:
    """Create ``<into>/<kind>_<vendor>/`` from the template; refuse to overwrite anything."""
    if kind not in KINDS:
        raise PluginKitError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    if not VENDOR_NAME.match(vendor):
        raise PluginKitError(
            f"vendor {vendor!r} must be 2 to 40 lower-case letters and digits, starting with a letter "
            "(it names the package gateway_<vendor> and the config's vendor = \"<vendor>\")"
        )
    if vendor == TEMPLATE_VENDOR:
        raise PluginKitError(f"{vendor!r} is the template's own placeholder name")
    title = (title or vendor.capitalize()).strip()
    class_prefix = class_prefix or class_prefix_for(vendor, title)
    if not class_prefix.isidentifier():
        raise PluginKitError(f"class prefix {class_prefix!r} is not a Python identifier")
    template_dir = Path(template) if template is not None else default_template()
    if not template_dir.is_dir():
        raise PluginKitError(f"no plugin template at {template_dir} (pass --template)")
    target = Path(into) / f"{kind}_{vendor}"
    if target.exists():
        raise PluginKitError(f"{target} already exists; remove it or choose another vendor name")

    replacements = _replacements(vendor, class_prefix, title)
    written: list[Path] = []
    try:
        for source, relative in _sources(template_dir, kind):
            name = _render(str(relative), replacements)
            if name.endswith(TEMPLATE_SUFFIX):
                name = name[: -len(TEMPLATE_SUFFIX)]
            destination = target / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            if source.suffix in TEXT_SUFFIXES:
                destination.write_text(_render(source.read_text(encoding="utf-8"), replacements), encoding="utf-8")
            else:
                shutil.copyfile(source, destination)
            written.append(destination)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)  # never leave half a plugin behind
        raise
    return NewPlugin(
        path=target,
        kind=kind,
        vendor=vendor,
        package=f"gateway_{vendor}",
        distribution=f"msp-gateway-{vendor}",
        class_prefix=class_prefix,
        title=title,
        files=tuple(written),
    )


def next_steps(plugin: NewPlugin) -> str:
    """What to do after generating ``plugin``, printed by the command."""
    return (
        f"created {plugin.path}/ ({plugin.title}: package {plugin.package}, distribution {plugin.distribution}, "
        f"vendor name {plugin.vendor!r}, {len(plugin.files)} files)\n"
        "next:\n"
        f"  .venv/bin/pip install -e {plugin.path}          # registers its entry points\n"
        f"  .venv/bin/python -m pytest {plugin.path} -q      # the simulator stub passes already\n"
        f"  then make {plugin.package}/simulator/app.py the vendor's real contract, and the client follow it\n"
        "  (docs/plugins.md walks through it)"
    )
