"""`make load`: the tracker under many users at once, through its production server (run.py)."""
