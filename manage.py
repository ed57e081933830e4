#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dcmms_release.settings")
    from django.core.management import execute_from_command_line

    from dcmms_release.keys import manage_gate

    manage_gate(sys.argv)  # refuses to run with keys that did not write the data
    execute_from_command_line(sys.argv)
