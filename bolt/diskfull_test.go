package bolt_test

func diskFullChild() bool { return false }
