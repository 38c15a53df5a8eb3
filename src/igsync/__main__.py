from igsync.cli import console

console()
