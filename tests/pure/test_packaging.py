"""Packaging rules a Registry/Manager install depends on, checked on the files themselves."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FORBIDDEN_IN_AGENTS = {"comfy", "comfy_api", "comfy_extras", "folder_paths", "server", "nodes", "execution"}


def _req_lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def test_requirements_txt_equals_pyproject_dependencies() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert _req_lines(REPO / "requirements.txt") == project["dependencies"]


def test_pyproject_registry_metadata() -> None:
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    project, comfy = data["project"], data["tool"]["comfy"]
    assert "comfyui" not in project["name"].lower()
    assert re.fullmatch(r"\d+\.\d+\.\d+", project["version"])
    assert project["license"] == {"file": "LICENSE"}
    assert "GNU GENERAL PUBLIC LICENSE" in (REPO / "LICENSE").read_text()[:200]
    for key in ("PublisherId", "DisplayName", "Icon", "includes", "requires-comfyui"):
        assert comfy.get(key), f"[tool.comfy] {key} missing"
    assert (REPO / comfy["Icon"]).is_file()
    # torch comes from ComfyUI: pinning it here would fight the user's CUDA build.
    assert not any(d.split("=")[0].split(">")[0].strip() == "torch" for d in project["dependencies"])


def test_root_init_is_import_safe() -> None:
    tree = ast.parse((REPO / "__init__.py").read_text())
    top_imports = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    assert top_imports == [], "the root __init__ must not import anything at module level"
    names = {n.targets[0].id for n in tree.body if isinstance(n, ast.Assign)}
    funcs = {n.name for n in tree.body if isinstance(n, ast.AsyncFunctionDef)}
    assert "comfy_entrypoint" in funcs and "WEB_DIRECTORY" in names
    assert "NODE_CLASS_MAPPINGS" not in names, "exporting V1 mappings makes the loader ignore comfy_entrypoint"


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_agents_never_import_comfyui() -> None:
    offenders = {
        str(p.relative_to(REPO)): sorted(_imported_roots(p) & FORBIDDEN_IN_AGENTS)
        for p in (REPO / "agents").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_no_network_or_path_edits_at_import_in_pack_modules() -> None:
    """Module level of agents/ and nodes/ must not touch sys.path or open connections."""
    bad = re.compile(r"^(sys\.path\.(insert|append)|urllib\.request\.urlopen|requests\.(get|post))", re.M)
    for path in list((REPO / "agents").rglob("*.py")) + list((REPO / "nodes").rglob("*.py")):
        assert not bad.search(path.read_text()), f"{path.relative_to(REPO)} edits sys.path or uses the network"


def test_fixture_images_keep_their_attribution() -> None:
    notice = (REPO / "tests" / "fixtures" / "NOTICE.md").read_text()
    for img in (REPO / "tests" / "fixtures").rglob("*"):
        if img.suffix.lower() in {".png", ".jpg"}:
            assert img.relative_to(REPO / "tests" / "fixtures").as_posix() in notice


def test_pack_modules_import_each_other_relatively() -> None:
    """ComfyUI loads the pack as custom_nodes.<folder>: a top-level `agents` package does not exist there."""
    offenders = []
    for path in list((REPO / "agents").rglob("*.py")) + list((REPO / "nodes").rglob("*.py")):
        roots = _imported_roots(path)
        if "agents" in roots:
            offenders.append(str(path.relative_to(REPO)))
    assert offenders == []


# Which agents/ family may import which (AGENTS.md shows the same table). A family is a subpackage;
# "policy" is the validated data every family reads. New families add their row here and in AGENTS.md.
FAMILY_IMPORTS: dict[str, set[str]] = {
    "policy": set(),
    "measure": {"policy"},
    "planning": {"policy", "measure"},
    "guidance": {"policy"},
    "runtime": {"policy", "measure", "planning"},
    "inbetween": {"policy", "measure"},
    "patterns": {"policy", "measure"},
    "calibration": {"policy", "measure", "planning", "runtime"},
}


def _families_imported(path: Path) -> set[str]:
    """The agents/ families a module's relative imports reach (from ..x import / from ..x.y import)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 2:
            if node.module:
                found.add(node.module.split(".")[0])
            else:  # from .. import x
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level > 2:
            found.add("<outside agents>")
    return found


def test_every_agents_module_lives_in_a_family() -> None:
    loose = [p.name for p in (REPO / "agents").glob("*.py") if p.name != "__init__.py"]
    assert loose == [], "agents/ holds only family subpackages: move these into one"
    families = {p.name for p in (REPO / "agents").iterdir() if (p / "__init__.py").is_file()}
    assert families <= set(FAMILY_IMPORTS), f"new family {sorted(families - set(FAMILY_IMPORTS))}: add its import rule"
    for family in families:
        doc = ast.get_docstring(ast.parse((REPO / "agents" / family / "__init__.py").read_text()))
        # The first line says what the family owns (a longer docstring may follow with a blank line).
        lines = (doc or "").splitlines()
        assert lines and lines[0].strip() and (len(lines) == 1 or not lines[1].strip()), \
            f"agents/{family}/__init__.py must say in its first line what it owns"


def test_families_import_only_what_their_rule_allows() -> None:
    offenders = {}
    for family, allowed in FAMILY_IMPORTS.items():
        for path in (REPO / "agents" / family).rglob("*.py"):
            bad = _families_imported(path) - allowed - {family}
            if bad:
                offenders[str(path.relative_to(REPO))] = sorted(bad)
    assert offenders == {}


def test_nodes_import_the_versioned_comfy_api() -> None:
    """comfy_api.latest may change under a pack; the versioned module (present in the floor 0.3.75) does not."""
    offenders = [str(p.relative_to(REPO)) for p in (REPO / "nodes").rglob("*.py")
                 if re.search(r"comfy_api\.latest\b", p.read_text())]
    assert offenders == []


def _template_node_ids() -> set[str]:
    from agents.policy import default_policy

    pol = default_policy()
    return set(pol.nodes) | pol.template_contract.all_ids()


def test_no_template_node_id_is_a_literal_outside_the_policy() -> None:
    """The policy's [nodes] and [template] name every node id the code touches; code reads them there.
    Any string constant equal to one of those ids in the shipped code or its tools is a second copy."""
    ids = _template_node_ids()
    mention = re.compile(r"\bnodes? (?:" + "|".join(sorted(ids, key=len, reverse=True)) + r")\b")
    offenders = []
    for folder in ("agents", "nodes", "cli", "bench", "scripts"):
        for path in (REPO / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in ids:
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno} {node.value!r}")
                elif isinstance(node, ast.Constant) and isinstance(node.value, str) and mention.search(node.value):
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno} {node.value[:60]!r}")
    assert offenders == []


def test_the_pack_and_its_tools_call_no_core_node_internals() -> None:
    """Core node classes move between V1 and V3 across ComfyUI versions (SetUnionControlNetType.execute
    exists only where it is V3): the pack, its CLI and the test host use ComfyUI's public objects."""
    call = re.compile(r"\b(SetUnionControlNetType|ControlNetApplyAdvanced|KSampler|CheckpointLoaderSimple)"
                      r"(\(\))?\.(execute|apply_controlnet|sample|load_checkpoint)\(")
    offenders = [str(p.relative_to(REPO)) for folder in ("agents", "nodes", "cli", "tests/host")
                 for p in (REPO / folder).rglob("*.py") if call.search(p.read_text())]
    assert offenders == []
