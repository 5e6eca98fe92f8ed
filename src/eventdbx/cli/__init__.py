"""The dbx command line: click commands, one module per noun."""
