"""The recipes (recipes.py) and the renderer (render.py) of bench/reproduce.py: every method against its paper."""
