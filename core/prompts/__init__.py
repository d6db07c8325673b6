"""Community prompts: default templates as data files, a versioned per-community store, strict templating.

Modules: ``template`` (the strict ``{variable}`` parser), ``slots`` (slot names and the default files in
``defaults/``), ``store`` (Redis), ``service`` (``Prompts``, what the assistant reads), ``commands`` (the
moderators' ``/prompt``), ``preview``, ``transfer`` (YAML/TOML files) and ``cli`` (``chorus prompts``).
"""
