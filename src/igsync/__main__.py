from igsync.cli import main

main()
